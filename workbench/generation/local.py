"""Local generation with transformers: any causal LM folder, Hugging Face id, or GGUF file.

GGUF files (like the packaged SmolLM2) are slow to load (~25 s), so the first load converts them
once to a safetensors copy under ``$WORKBENCH_HOME/models`` and later loads read that (<1 s).
Conversion writes to a temporary folder and renames it into place, under a file lock, so two
processes never see a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..config import GenerationConfig
from ..errors import ModelLoadError
from ..paths import models_dir
from ..progress import ProgressEvent, ProgressSink, null_sink
from .base import Emit, Execution, Generator, Messages

CACHE_META = "workbench-source.json"


def gguf_cache_dir(gguf_path: Path) -> Path:
    """Where the converted copy of ``gguf_path`` lives (keyed by path, size and mtime)."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return models_dir() / f"{gguf_path.stem}-{key}"


def is_converted(gguf_path: Path) -> bool:
    return (gguf_cache_dir(gguf_path) / CACHE_META).exists()


def convert_gguf(gguf_path: Path, progress: ProgressSink = null_sink) -> Path:
    """Convert a GGUF file once to a bf16 safetensors folder; return that folder."""
    import torch
    from filelock import FileLock
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target = gguf_cache_dir(gguf_path)
    if (target / CACHE_META).exists():
        return target
    with FileLock(str(target) + ".lock", timeout=600):
        if (target / CACHE_META).exists():  # another process finished it while we waited
            return target
        progress(ProgressEvent("convert", 0, 2, f"Converting {gguf_path.name} (once, ~30 s)"))
        started = time.perf_counter()
        folder, name = str(gguf_path.parent), gguf_path.name
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            # Without dequantize=True the converted model cannot be saved.
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
            )
        except Exception as exc:  # transformers raises many kinds here
            raise ModelLoadError(f"Could not read GGUF file {gguf_path}: {exc}") from exc
        progress(ProgressEvent("convert", 1, 2, "Saving safetensors copy"))
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        meta = {"source": str(gguf_path.resolve()), "seconds": round(time.perf_counter() - started, 2)}
        (tmp / CACHE_META).write_text(json.dumps(meta, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        progress(ProgressEvent("convert", 2, 2, "Converted"))
    return target


def _quiet_transformers() -> None:
    """Silence transformers' own progress bars and info logs: we report progress ourselves."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class LocalGenerator(Generator):
    """A transformers causal LM running in this process."""

    def __init__(self, model_id: str, source: str, *, gguf_file: str | None = None,
                 device: str | None = None, progress: ProgressSink = null_sink):
        from ..runtime import configure_threads, inference_dtype, pick_device

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        configure_threads()
        _quiet_transformers()
        self.model_id = model_id
        self.device = device or pick_device()
        if gguf_file:
            source = str(convert_gguf(Path(source) / gguf_file, progress))
        self.source = source
        started = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            # safetensors only and no remote code: an uploaded or downloaded model cannot run code.
            self.model = AutoModelForCausalLM.from_pretrained(
                source, dtype=inference_dtype(self.device), use_safetensors=True, trust_remote_code=False
            ).to(self.device)
        except OSError as exc:
            raise ModelLoadError(
                f"Expected a model folder or a Hugging Face model id reachable offline; could not load {source!r}: {exc}",
                fix="Use a local folder, or run once with internet so the model is in the Hugging Face cache.",
            ) from exc
        self.model.eval()
        self.load_s = time.perf_counter() - started
        if self.tokenizer.chat_template is None:
            raise ModelLoadError(f"Expected {source!r} to have a chat template (an instruct model); it has none.")
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.RLock()  # one generate at a time per model copy
        self._peft: Any = None  # PeftModel wrapping self.model once an adapter is used
        self._torch = torch

    # -- tokens -----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_messages(self, messages: Messages) -> Any:
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        return enc["input_ids"]

    def render_prompt(self, messages: Messages) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    # -- generation ---------------------------------------------------------------------------
    def _ensure_adapter(self, path: str) -> Any:
        """Load the adapter at ``path`` once (one base copy in memory; adapters are switched, not copied)."""
        from peft import PeftModel

        key = _adapter_key(path)
        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.model, path, adapter_name=key, is_trainable=False)
            self._peft.eval()
        elif key not in self._peft.peft_config:
            self._peft.load_adapter(path, adapter_name=key, is_trainable=False)
        return key

    def unload_adapter(self, path: str) -> None:
        if self._peft is not None and _adapter_key(path) in self._peft.peft_config:
            with self._lock:
                self._peft.delete_adapter(_adapter_key(path))

    def _execute(self, messages: Messages, config: GenerationConfig, emit: Emit, adapter: str | None = None
                 ) -> Execution:
        import contextlib

        torch = self._torch
        input_ids = self.encode_messages(messages).to(self.device)
        n_in = int(input_ids.shape[1])
        max_new = min(config.max_new_tokens, max(1, self.context_length - n_in))
        streamer = _TextStreamer(self.tokenizer, emit)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new,
            do_sample=not config.greedy,
            repetition_penalty=config.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            streamer=streamer,
        )
        if not config.greedy:
            kwargs.update(temperature=config.temperature, top_p=config.top_p)
        with self._lock:
            # Loaded outside inference mode: PEFT must be able to change these tensors later (delete_adapter).
            key = self._ensure_adapter(adapter) if adapter else None
        with self._lock, torch.inference_mode():
            if not config.greedy:
                torch.manual_seed(config.seed)
            model, scope = self.model, contextlib.nullcontext()
            if key:
                self._peft.set_adapter(key)
                model = self._peft
            elif self._peft is not None:  # LoRA layers are injected into the base: switch them off
                model, scope = self._peft, self._peft.disable_adapter()
            with scope:
                out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        streamer.flush()
        new = out[0, n_in:]
        n_out = int(new.shape[0])
        ended = n_out > 0 and int(new[-1]) == self.tokenizer.eos_token_id
        return Execution(n_in, n_out, "stop" if ended or n_out < max_new else "length")


def _adapter_key(path: str) -> str:
    """A PEFT adapter name for a folder (PEFT names may not contain dots)."""
    import hashlib

    return "a" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:12]


class _TextStreamer:
    """Receives token ids from ``generate`` and emits decoded text as soon as it is stable."""

    def __init__(self, tokenizer: Any, emit: Emit):
        self.tokenizer, self.emit = tokenizer, emit
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an unfinished multi-byte character: wait for the rest
            return
        self._send(text)

    def _send(self, text: str) -> None:
        if len(text) > self.sent:
            self.emit(text[self.sent:])
            self.sent = len(text)

    def end(self) -> None:
        self.flush()

    def flush(self) -> None:
        self._send(self.tokenizer.decode(self.ids, skip_special_tokens=True))
