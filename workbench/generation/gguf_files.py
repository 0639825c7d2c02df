"""GGUF files converted once to a safetensors folder.

GGUF files (like the packaged SmolLM2) are slow to load (~30 s on 2 cores), so the first load converts them
once to a safetensors copy under ``$WORKBENCH_HOME/models`` (``WORKBENCH_MODELS_DIR``) and later loads
read that (<1 s). Conversion writes to a temporary folder and renames it into place, under a file lock,
so two processes never see a half-written cache.

    folder = convert_gguf(Path("model.gguf"), progress)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from ..errors import ModelLoadError
from ..paths import models_dir
from ..progress import ProgressEvent, ProgressSink, null_sink

CACHE_META = "workbench-source.json"


def gguf_cache_dir(gguf_path: Path) -> Path:
    """Where the converted copy of ``gguf_path`` lives (keyed by path, size and mtime)."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return models_dir() / f"{gguf_path.stem}-{key}"


def is_converted(gguf_path: Path) -> bool:
    return (gguf_cache_dir(gguf_path) / CACHE_META).exists()


@contextlib.contextmanager
def read_header_once() -> Iterator[None]:
    """While converting, read each GGUF file's header once. transformers reads it three times (for the
    tokenizer, the config and the weights), and gguf's reader parses every vocabulary entry as a separate
    array view: for Gemma 3's 262k-token vocabulary each read takes about half a minute on 2 cores. The
    reader is read-only (a memory map), so one instance serves all three reads."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as hf_gguf

    original_reader, original_load = gguf.GGUFReader, hf_gguf.load_gguf_checkpoint
    readers: dict[str, Any] = {}
    metadata: dict[str, Any] = {}

    def reader(path: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # another mode than read-only: not ours to share
            return original_reader(path, *args, **kwargs)
        key = str(Path(path).resolve())
        if key not in readers:
            readers[key] = original_reader(path)
        return readers[key]

    def load(path: Any, return_tensors: bool = False, *args: Any, **kwargs: Any) -> Any:
        if return_tensors or args or kwargs:
            return original_load(path, return_tensors, *args, **kwargs)
        key = str(Path(path).resolve())
        if key not in metadata:  # the tokenizer and the config ask for the same parsed header
            metadata[key] = original_load(path, return_tensors=False)
        return copy.deepcopy(metadata[key])  # callers pop and edit what they get

    gguf.GGUFReader, hf_gguf.load_gguf_checkpoint = reader, load
    try:
        yield
    finally:
        gguf.GGUFReader, hf_gguf.load_gguf_checkpoint = original_reader, original_load


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
            with read_header_once():
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
