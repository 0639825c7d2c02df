"""Run-time choices about the machine: device, dtype, CPU threads.

Chosen when a model loads, never at import: CUDA when present, else CPU. A local model computes in bf16
on a GPU or a CPU with bf16 units (AMX, AVX512-BF16), else in fp32, several times faster where torch
emulates bf16 products; ``WORKBENCH_INFERENCE_DTYPE`` chooses (``inference_dtype_name``).
Override the device with ``WORKBENCH_DEVICE`` (``cpu``/``cuda``) and the threads with ``WORKBENCH_THREADS``.
On CPU, decode steps read the weights packed to 4 or 8 bits (``generation/quantized.py``);
``WORKBENCH_DECODE_WEIGHTS`` chooses.
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


def cpu_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX, or AVX512-BF16 dot products).
    On the 2-core reference machine, with AMX (2026-12-03), a LoRA step of the 135M model on 4 x 600
    tokens took 10.5 s in bf16 mixed precision against 15.6 s in fp32 (both without LoRA dropout). On a
    2-core AMD EPYC with AVX2 only (2026-12-03), a bf16 product of 800 x 576 by 576 x 1536 ran at 8.7
    GFLOP/s against 43 in fp32."""
    import torch

    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(probe is not None and probe() for probe in probes)


def training_precision(choice: str, cuda: bool) -> tuple[str, str]:
    """(``bf16`` or ``fp32``, why) for a training run; ``choice`` is ``auto``, ``bf16`` or ``fp32``."""
    if choice != "auto":
        return choice, f"{choice} chosen in the settings."
    if cuda:
        return "bf16", "A CUDA GPU computes in bf16."
    if cpu_bf16_units():
        return "bf16", ("This CPU has bf16 units (AMX or AVX512-BF16): bf16 mixed precision, the adapter's weights "
                        "in fp32.")
    return "fp32", "This CPU has no bf16 matrix units: fp32."


INFERENCE_DTYPE_ENV = "WORKBENCH_INFERENCE_DTYPE"
INFERENCE_DTYPES = ("auto", "bf16", "fp32")


def inference_dtype_name(device: str) -> str:
    """``bf16`` or ``fp32``: what a local model computes in. ``WORKBENCH_INFERENCE_DTYPE`` chooses;
    ``auto`` (the default) is bf16 on a GPU and on a CPU with bf16 units, fp32 on a CPU without them.

    There torch emulates bf16 products: on a 2-core AMD EPYC with AVX2 only (2026-12-03) the 135M model
    read the sample's 800-token RAG prompt in 11.8 s in bf16 and 1.9 s in fp32. A greedy answer is the
    same batched and alone in either dtype (``decode_step.LowRank`` keeps adapters' terms batch-independent)."""
    chosen = (os.environ.get(INFERENCE_DTYPE_ENV) or "auto").strip().lower()
    if chosen not in INFERENCE_DTYPES:
        from .errors import ConfigError

        raise ConfigError(f"Expected {INFERENCE_DTYPE_ENV} to be one of {', '.join(INFERENCE_DTYPES)}; "
                          f"found {chosen!r}.",
                          fix=f"Unset {INFERENCE_DTYPE_ENV} for the default (auto).")
    if chosen == "auto":
        return "bf16" if device != "cpu" or cpu_bf16_units() else "fp32"
    return chosen


def inference_dtype(device: str):
    """The torch dtype used for generation on ``device`` (see :func:`inference_dtype_name`)."""
    import torch

    return torch.bfloat16 if inference_dtype_name(device) == "bf16" else torch.float32


DECODE_WEIGHTS = ("auto", "int4", "int8", "bf16")
DECODE_WEIGHTS_ENV = "WORKBENCH_DECODE_WEIGHTS"


def decode_weights(device: str = "cpu") -> str:
    """How a local model's decode steps read its weights on ``device``: on CPU ``WORKBENCH_DECODE_WEIGHTS``
    (``auto``, the default: 4 bits where a layer is stored at 4 bits already, else 8; ``int4``; ``int8``;
    ``bf16``, the weights as loaded); on a GPU always as loaded (``bf16``)."""
    if device != "cpu":
        return "bf16"
    chosen = (os.environ.get(DECODE_WEIGHTS_ENV) or "auto").strip().lower()
    if chosen not in DECODE_WEIGHTS:
        from .errors import ConfigError

        raise ConfigError(f"Expected {DECODE_WEIGHTS_ENV} to be one of {', '.join(DECODE_WEIGHTS)}; found {chosen!r}.",
                          fix=f"Unset {DECODE_WEIGHTS_ENV} for the default (auto), or set it to bf16 for the weights as "
                              "loaded.")
    return chosen


def decode_weights_note(device: str = "cpu") -> str:
    """One sentence on how local models decode here (Settings, ``doctor``)."""
    weights = decode_weights(device)
    dtype = inference_dtype_name(device)
    slow_bf16 = device == "cpu" and not cpu_bf16_units()
    why = (" (this CPU has no bf16 units, so fp32 reads prompts several times faster)" if slow_bf16 and dtype == "fp32"
           else " (this CPU has no bf16 units: fp32 would read prompts several times faster)" if slow_bf16 else "")
    computes = f"Local models compute in {dtype}{why}; {INFERENCE_DTYPE_ENV} on the server chooses. "
    if weights == "bf16":
        return computes + f"They decode with their weights as loaded ({dtype})."
    what = {"auto": "4 bits in groups of 32 where a layer is stored at 4 bits already (the packaged SmolLM2's "
                    "layers are), else 8 bits per row, so no weight moves by more than 1% of its layer's largest",
            "int4": "4 bits in groups of 32 (the output layer 8 bits)",
            "int8": "8 bits per row"}[weights]
    return (computes + f"They decode on this CPU with their weights packed to {what}; decode is several times faster. "
            f"{DECODE_WEIGHTS_ENV}=bf16 on the server keeps the weights as loaded.")
