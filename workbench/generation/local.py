"""Local generation with transformers: any causal LM folder, Hugging Face id, or GGUF file (converted
once to a safetensors folder by :mod:`.gguf_files`)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import GenerationConfig
from ..errors import ModelLoadError
from ..progress import ProgressSink, null_sink
from .base import Emit, Execution, Generator, Messages
from .coalesce import Coalescer
from .gguf_files import convert_gguf

#: The chat template given to a base model that has none (Gemma 3 270M, GPT-2...): plain "User:" /
#: "Assistant:" turns. Training and answering use the same one, so an adapter learns the format it is
#: asked in; an answer ends at the end-of-text token that training appends after each reply.
PLAIN_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ m['content'] }}{{ '\\n\\n' }}"
    "{%- elif m['role'] == 'user' -%}User: {{ m['content'] }}{{ '\\n\\n' }}"
    "{%- else -%}Assistant: {{ m['content'] }}{{ eos_token }}{{ '\\n\\n' }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}Assistant:{%- endif -%}"
)
PLAIN_TEMPLATE_NOTE = "a base model without a chat template: prompts use plain User:/Assistant: turns"


def load_tokenizer(source: str) -> Any:
    """The tokenizer of a model folder or hub id. A base model without a chat template gets
    ``PLAIN_CHAT_TEMPLATE`` (and ``tokenizer.workbench_plain_template = True``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.workbench_plain_template = tokenizer.chat_template is None
    if tokenizer.workbench_plain_template:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return tokenizer


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
        from transformers import AutoModelForCausalLM

        configure_threads()
        _quiet_transformers()
        self.model_id = model_id
        self.device = device or pick_device()
        if gguf_file:
            source = str(convert_gguf(Path(source) / gguf_file, progress))
        self.source = source
        started = time.perf_counter()
        try:
            self.tokenizer = load_tokenizer(source)
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
        from ..runtime import decode_weights, inference_dtype_name
        from .quantized import pack_for_decode

        #: What the model computes in (``runtime.inference_dtype_name``): stored with every answer.
        self.compute_dtype = inference_dtype_name(self.device)

        #: How decode steps read the weights (``quantized.py``): stored with every answer of this model.
        self.packing = pack_for_decode(self.model, decode_weights(self.device))
        self.decode_weights = self.packing.weights
        #: Whether a row decoding alone must be paired with a copy of itself (``batching.decode``).
        self.pair_lone_rows = False
        self._probed: set[tuple[int, int]] = set()
        self._probe_linears(m for m in self.model.modules() if type(m) is torch.nn.Linear)
        self.load_s = time.perf_counter() - started
        #: None for a model with its own chat template, else why its prompts look plain (shown with its answers).
        self.template_note = PLAIN_TEMPLATE_NOTE if self.tokenizer.workbench_plain_template else None
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.RLock()  # one generate at a time per model copy
        # Concurrent callers (sessions) with the same settings are decoded together, not one by one.
        self._coalescer = Coalescer(self._execute_batch)
        #: Most distinct adapters decoded in one batch so far (the load benchmark reports it).
        self.most_adapters_in_batch = 0
        self._peft: Any = None  # PeftModel wrapping self.model once an adapter is used
        self._lora_found: dict[str, list[Any]] = {}  # _lora_layers, cleared when adapters are loaded or removed
        self._torch = torch
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = {self.tokenizer.eos_token_id} | set(eos if isinstance(eos, list) else [eos] if eos else [])
        self._eos_ids.discard(None)
        self.batches = self._can_batch()
        #: The decode step the batched loop uses: ``decode_step.llama_step`` where it gives the model's own
        #: logits exactly, else the model's forward (``batching.generic_step``).
        self._step: Any = None
        self._low_rank: Any = None  # decode_step.LowRank: adapters' fp32 factors, cleared when adapters change
        if not self.batches:
            self._execute = self._execute_hf  # type: ignore[method-assign]
        else:
            from functools import partial

            from .batching import GrowingLayer, generic_step
            from .decode_step import fused_products, llama_step, matches_forward, supported
            from .low_rank import LowRank

            fused = fused_products(self.model) if supported(self.model) else []
            if matches_forward(self.model, generic_step(self.model), GrowingLayer, fused):
                self._low_rank = LowRank()
                self._step = partial(llama_step, self.model, fused=fused, low_rank=self._low_rank)

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
        if self._peft is None or key not in self._peft.peft_config:
            self._lora_found.clear()
            if self._low_rank is not None:
                self._low_rank.clear()
        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.model, path, adapter_name=key, is_trainable=False)
            self._peft.eval()
        elif key not in self._peft.peft_config:
            self._peft.load_adapter(path, adapter_name=key, is_trainable=False)
        else:
            return key
        # Adapter weights in the model's dtype: the LoRA products then round like the base ones
        # (batch-independent), and cost less.
        dtype = next(self.model.parameters()).dtype
        for name, param in self._peft.named_parameters():
            if f".{key}." in name and param.dtype != dtype:
                param.data = param.data.to(dtype)
        # Only layers LowRank cannot serve (batch-independent terms) decode through PEFT's products: probe those.
        low_rank = self._low_rank
        self._probe_linears(m for layer in self._lora_layers(key) if low_rank is None or not low_rank.serves(layer, key)
                            for m in (layer.lora_A[key], layer.lora_B[key]))
        return key

    def _probe_linears(self, modules: Any) -> None:
        """Pair lone rows from now on if any of these products rounds a lone row differently."""
        from .batching import rows_independent

        dtype = next(self.model.parameters()).dtype
        for module in modules:
            shape = (module.in_features, module.out_features)
            if shape in self._probed or self.pair_lone_rows:
                continue
            self._probed.add(shape)
            if not rows_independent(module, module.in_features, dtype):
                self.pair_lone_rows = True

    def unload_adapter(self, path: str) -> None:
        if self._peft is not None and _adapter_key(path) in self._peft.peft_config:
            with self._lock:
                key = _adapter_key(path)
                self._lora_found.clear()
                if self._low_rank is not None:
                    self._low_rank.clear()
                if len(self._peft.peft_config) == 1:  # the last one: give back the plain base model
                    self.model = self._peft.unload()
                    self._peft = None
                    return
                self._peft.delete_adapter(key)
                # Several adapters may have been active together (a mixed batch): leave one that exists.
                self._peft.base_model.set_adapter(next(iter(self._peft.peft_config)), inference_mode=True)

    def _execute(self, messages: Messages, config: GenerationConfig, emit: Emit, adapter: str | None = None
                 ) -> Execution:
        return self._execute_many([(messages, adapter)], config, [emit], lambda i: None)[0]

    def _execute_many(self, requests: list[tuple[Messages, str | None]], config: GenerationConfig,
                      emits: list[Emit], done: Callable[[int], None]) -> list[Execution]:
        if not self.batches:
            return super()._execute_many(requests, config, emits, done)
        return self._coalescer.run(requests, config, emits, done)

    def _execute_batch(self, requests: list[tuple[Messages, str | None]], config: GenerationConfig,
                       emits: list[Emit], done: Callable[[int], None]) -> list[Execution]:
        from .batching import Row, Sampling, decode

        with self._lock:
            # Loaded outside inference mode: PEFT must be able to change these tensors later (delete_adapter).
            keys = [self._ensure_adapter(adapter) if adapter else None for _, adapter in requests]
        # Rows with different adapters (and base rows) decode together: each row gets only its own adapter.
        self.most_adapters_in_batch = max(self.most_adapters_in_batch, len({k for k in keys if k}))
        rows, streamers = [], []
        for i, ((messages, _), key) in enumerate(zip(requests, keys)):
            ids = self.encode_messages(messages)[0].to(self.device)
            streamer = _TextStreamer(self.tokenizer, emits[i])
            max_new = min(config.max_new_tokens, max(1, self.context_length - int(ids.shape[0])))
            rows.append(Row(ids, key, max_new, streamer.add, _finisher(streamer, done, i)))
            streamers.append(streamer)
        sampling = Sampling(config.greedy, config.temperature, config.top_p, config.repetition_penalty, config.seed,
                            config.penalize_prompt, config.adapter_repetition_penalty)
        with self._lock, self._torch.inference_mode():
            forward = self._peft if self._peft is not None else self.model
            decode(forward, rows, set() if config.ignore_eos else self._eos_ids, sampling, self._adapter_scope,
                   self.pair_lone_rows, self._step)
        # A row whose caller failed (went away) carries its error; the coalescer gives it to that caller only.
        return [r.error if r.error is not None else
                Execution(int(r.input_ids.shape[0]), len(r.out) + (1 if r.stopped else 0),
                          "stop" if r.stopped else "length") for r in rows]

    @contextlib.contextmanager
    def _adapter_scope(self, names: list[str | None]) -> Iterator[None]:
        """Apply adapter ``names[i]`` to batch row ``i`` (None: base weights) while the context is open.

        Every adapter named is active at once, and each one's LoRA layers get a per-row input mask: 1 on
        its own rows, 0 on every other row. A row's output is then its base output plus its own adapter's
        term plus exact zeros, so any mix of adapters and base rows goes through the same matrix products
        as each row alone would (PEFT's own mixed batches take a different product for each sub-batch,
        which changes the rounding). The masks sit where LoRA's dropout sits (an identity at inference)."""
        if self._peft is None:
            yield
            return
        used = sorted({n for n in names if n})
        if not used:  # LoRA layers are injected into the base: switch them off
            with self._peft.disable_adapter():
                yield
            return
        self._peft.base_model.set_adapter(used, inference_mode=True)
        torch = self._torch
        dtype = next(self.model.parameters()).dtype
        from .batching import RowMask

        swapped = []
        try:
            for key in used:
                mask = RowMask(torch.tensor([1.0 if n == key else 0.0 for n in names], dtype=dtype,
                                            device=self.device).view(-1, 1, 1))
                for layer in self._lora_layers(key):
                    swapped.append((layer, key, layer.lora_dropout[key]))
                    layer.lora_dropout[key] = mask  # LoRA input is x * mask: zero on other rows, exact on its own
            yield
        finally:
            for layer, key, dropout in reversed(swapped):
                layer.lora_dropout[key] = dropout

    def _lora_layers(self, key: str) -> list[Any]:
        """The LoRA layers of adapter ``key`` (found once per loaded set of adapters: walking the modules took
        about 0.1 s per comparison)."""
        found = self._lora_found.get(key)
        if found is None:
            from peft.tuners.lora import LoraLayer

            found = self._lora_found[key] = [m for m in self._peft.modules()
                                             if isinstance(m, LoraLayer) and key in m.scaling]
        return found

    def _can_batch(self) -> bool:
        """Whether this model works with the batched decode loop (plain key/value cache, custom attention)."""
        from transformers.cache_utils import DynamicLayer

        from .batching import ATTENTION_NAME, register_attention

        try:
            register_attention()
            self.model.set_attn_implementation(ATTENTION_NAME)
            with self._torch.inference_mode():
                out = self.model(input_ids=self._torch.tensor([[1, 2]], device=self.device), use_cache=True)
            layers = getattr(out.past_key_values, "layers", [])
            return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
        except Exception:  # any model the loop does not understand decodes one request at a time
            try:
                self.model.set_attn_implementation("sdpa")
            except Exception:
                pass
            return False

    def _execute_hf(self, messages: Messages, config: GenerationConfig, emit: Emit, adapter: str | None = None
                    ) -> Execution:
        """One request through ``transformers`` ``generate`` (models the batched loop cannot drive)."""
        import contextlib

        torch = self._torch
        input_ids = self.encode_messages(messages).to(self.device)
        n_in = int(input_ids.shape[1])
        max_new = min(config.max_new_tokens, max(1, self.context_length - n_in))
        streamer = _TextStreamer(self.tokenizer, emit)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new,
            do_sample=not config.greedy,
            logits_processor=repetition_processor(config.penalty(adapter), 0 if config.penalize_prompt else n_in),
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            eos_token_id=sorted(self._eos_ids),
            streamer=streamer,
        )
        if not config.greedy:
            kwargs.update(temperature=config.temperature, top_p=config.top_p)
        if config.ignore_eos:
            kwargs["min_new_tokens"] = max_new
        with self._lock:
            key = self._ensure_adapter(adapter) if adapter else None
        with self._lock, torch.inference_mode():
            if not config.greedy:
                torch.manual_seed(config.seed)
            model, scope = self.model, contextlib.nullcontext()
            if key:
                self._peft.set_adapter(key)
                model = self._peft
            elif self._peft is not None:
                model, scope = self._peft, self._peft.disable_adapter()
            with scope:
                out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        streamer.flush()
        new = out[0, n_in:]
        n_out = int(new.shape[0])
        ended = n_out > 0 and int(new[-1]) in self._eos_ids
        return Execution(n_in, n_out, "stop" if ended or n_out < max_new else "length")


def repetition_processor(penalty: float, prompt_tokens: int) -> Any:
    """transformers' repetition penalty as a logits-processor list, counting only the tokens after the first
    ``prompt_tokens`` (0: the prompt too, as ``generate(repetition_penalty=...)`` does)."""
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    if penalty == 1.0:
        return LogitsProcessorList()
    return LogitsProcessorList([RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=prompt_tokens or None)])


def _finisher(streamer: "_TextStreamer", done: Callable[[int], None], i: int) -> Callable[[], None]:
    def finish() -> None:
        streamer.flush()
        done(i)
    return finish


def _adapter_key(path: str) -> str:
    """A PEFT adapter name for a folder (PEFT names may not contain dots)."""
    import hashlib

    return "a" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:12]


class _TextStreamer:
    """Receives token ids and emits decoded text as soon as it is stable.

    Works both with our decode loop (``add``) and as a ``transformers`` streamer (``put``/``end``)."""

    def __init__(self, tokenizer: Any, emit: Emit):
        self.tokenizer, self.emit = tokenizer, emit
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False

    def add(self, token: int) -> None:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an unfinished multi-byte character: wait for the rest
            return
        self._send(text)

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.add(int(token))

    def _send(self, text: str) -> None:
        if len(text) > self.sent:
            self.emit(text[self.sent:])
            self.sent = len(text)

    def end(self) -> None:
        self.flush()

    def flush(self) -> None:
        self._send(self.tokenizer.decode(self.ids, skip_special_tokens=True))
