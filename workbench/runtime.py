"""Run-time choices about the machine: device, dtype, CPU threads.

Chosen when a model loads, never at import: CUDA when present, else CPU. On CPU we use bf16 for
inference (measured faster decode than fp32 on the 2-core reference machine); override with
``WORKBENCH_DEVICE`` (``cpu``/``cuda``) and ``WORKBENCH_THREADS``.
"""

from __future__ import annotations

import os

_threads_configured = False


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def configure_threads() -> int:
    """Set torch's intra-op threads once per process (``WORKBENCH_THREADS`` or all usable CPUs)."""
    global _threads_configured
    import torch

    n = int(os.environ.get("WORKBENCH_THREADS") or available_cpus())
    if not _threads_configured:
        torch.set_num_threads(max(1, n))
        _threads_configured = True
    return torch.get_num_threads()


def pick_device() -> str:
    """``cuda`` when a CUDA GPU is usable, else ``mps`` on an Apple GPU, else ``cpu``
    (``WORKBENCH_DEVICE`` overrides: ``WORKBENCH_DEVICE=cpu`` keeps a Mac on its CPU)."""
    forced = os.environ.get("WORKBENCH_DEVICE")
    if forced:
        return forced
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if has_mps() else "cpu"


def has_mps() -> bool:
    """Whether torch can use an Apple GPU (Metal Performance Shaders)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def inference_dtype(device: str):
    """The dtype used for generation on ``device``."""
    import torch

    return torch.bfloat16
