"""Offline pre-flight checks: models present and loadable, device, 4-bit support, versions, disk.

``run_doctor()`` returns a ``Report``; the CLI prints it and the Home page shows it. Every missing
piece names the command that fixes it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import models, paths
from .config import DEFAULT_EMBEDDER, DEFAULT_GENERATOR
from .errors import WorkbenchError

OK, WARN, MISSING = "ok", "warn", "missing"

#: Packages the workbench uses, by distribution name.
PACKAGES = [
    "torch", "transformers", "peft", "bitsandbytes", "accelerate", "gguf", "sentence-transformers",
    "chromadb", "streamlit", "plotly", "pandas", "openai",
]
MIN_FREE_GB = 2.0


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    """What was checked."""
    status: str
    """``ok``, ``warn`` or ``missing``."""
    detail: str
    """What was found."""
    fix: str | None = None
    """The command or setting that fixes a problem."""


@dataclass
class Report:
    """All checks, in order."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != MISSING for c in self.checks)

    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status != OK]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def format(self) -> str:
        marks = {OK: "ok  ", WARN: "warn", MISSING: "MISS"}
        width = max(len(c.name) for c in self.checks)
        lines = []
        for c in self.checks:
            lines.append(f"[{marks[c.status]}] {c.name.ljust(width)}  {c.detail}")
            if c.fix and c.status != OK:
                lines.append(f"       {' ' * width}  fix: {c.fix}")
        return "\n".join(lines)


def pinned_versions() -> dict[str, str]:
    """Versions pinned in the project's requirements.txt, when it is next to the package."""
    req = Path(__file__).resolve().parent.parent / "requirements.txt"
    pins: dict[str, str] = {}
    if req.exists():
        for line in req.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.strip()
    return pins


def _check_packages() -> list[Check]:
    pins = pinned_versions()
    checks = []
    for name in PACKAGES:
        pin = pins.get(name)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            fix = f"pip install {name}=={pin}" if pin else f"pip install {name}"
            checks.append(Check(f"package {name}", MISSING, "not installed", f"make install  (or {fix})"))
            continue
        base_version = version.split("+", 1)[0]
        if pin and base_version != pin:
            checks.append(Check(f"package {name}", WARN, f"{version} (tested with {pin})", f"pip install {name}=={pin}"))
        else:
            checks.append(Check(f"package {name}", OK, version))
    return checks


def _check_device() -> list[Check]:
    from .runtime import available_cpus, has_mps

    if importlib.util.find_spec("torch") is None:
        return [Check("device", MISSING, "torch is not installed", "make install")]
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        mem = torch.cuda.get_device_properties(0).total_memory / 2**30
        device = Check("device", OK, f"cuda: {name} ({mem:.0f} GiB); {available_cpus()} CPU cores")
    elif has_mps():
        device = Check("device", OK, f"mps: Apple GPU for answers (training runs on the CPU); {available_cpus()} CPU "
                                     "cores. WORKBENCH_DEVICE=cpu keeps answers on the CPU.")
    else:
        device = Check("device", OK, f"cpu: {available_cpus()} cores, no CUDA GPU (training and answers run on the CPU)")
    if importlib.util.find_spec("bitsandbytes") is None:
        quant = Check("4-bit (QLoRA)", WARN, "bitsandbytes is not installed", "pip install bitsandbytes==0.50.2")
    elif torch.cuda.is_available():
        quant = Check("4-bit (QLoRA)", OK, "available on CUDA (nf4)")
    else:
        quant = Check("4-bit (QLoRA)", OK, "available on CPU via bitsandbytes, but slower than LoRA at this model size")
    return [device, quant, _check_decode_weights(), _check_compute_dtype()]


def _check_decode_weights() -> Check:
    from .errors import ConfigError
    from .runtime import DECODE_WEIGHTS_ENV, decode_weights, pick_device

    try:
        weights = decode_weights(pick_device())
    except ConfigError as exc:
        return Check("decode weights", MISSING, exc.args[0], exc.fix or "")
    return Check("decode weights", OK, f"{weights} ({DECODE_WEIGHTS_ENV} chooses on CPU: auto, int4, int8 or bf16)")


def _check_compute_dtype() -> Check:
    from .errors import ConfigError
    from .runtime import INFERENCE_DTYPE_ENV, cpu_bf16_units, inference_dtype_name, pick_device

    device = pick_device()
    try:
        dtype = inference_dtype_name(device)
    except ConfigError as exc:
        return Check("compute dtype", MISSING, exc.args[0], exc.fix or "")
    why = ("" if device != "cpu" else " (this CPU has bf16 units)" if cpu_bf16_units()
           else " (this CPU has no bf16 units: fp32 reads prompts several times faster on it)")
    return Check("compute dtype", OK, f"{dtype}{why}; {INFERENCE_DTYPE_ENV} chooses: auto (the default), bf16 or fp32")


def _check_model(kind: str, model_id: str, deep: bool) -> Check:
    name = f"{kind} {model_id}"
    try:
        location = models.locate(kind, model_id)
    except WorkbenchError as exc:
        return Check(name, MISSING, str(exc))
    if not location.present:
        return Check(name, MISSING, location.detail, location.fix)
    if not deep:
        return Check(name, OK, location.detail)
    started = time.perf_counter()
    try:
        if kind == "generator":
            gen = models.get_generator(model_id)
            out = gen.generate([{"role": "user", "content": "Say OK."}], _tiny_config())
            detail = f"loaded and generated {out.usage.tokens_out} tokens in {time.perf_counter() - started:.1f} s"
        else:
            emb = models.get_embedder(model_id)
            vec = emb.embed(["hello"])
            detail = f"loaded, {vec.shape[1]}-dimensional vectors, in {time.perf_counter() - started:.1f} s"
    except WorkbenchError as exc:
        return Check(name, MISSING, str(exc), exc.fix)
    return Check(name, OK, detail)


def _tiny_config():
    from .config import GenerationConfig

    return GenerationConfig(max_new_tokens=4)


def _check_home() -> Check:
    root = paths.home()
    free_gb = shutil.disk_usage(root).free / 2**30
    status = OK if free_gb >= MIN_FREE_GB else WARN
    fix = None if status == OK else f"Free disk space, or set WORKBENCH_HOME to a disk with over {MIN_FREE_GB:.0f} GB free."
    return Check("WORKBENCH_HOME", status, f"{root} ({free_gb:.1f} GB free)", fix)


def run_doctor(
    generator_id: str = DEFAULT_GENERATOR, embedder_id: str = DEFAULT_EMBEDDER, deep: bool = False
) -> Report:
    """Check this machine; ``deep=True`` also loads each model and runs it once."""
    py = sys.version_info
    checks = [Check("python", OK if py >= (3, 11) else MISSING, sys.version.split()[0],
                    None if py >= (3, 11) else "Install Python 3.11 or newer.")]
    checks += _check_device()
    checks.append(_check_model("generator", generator_id, deep))
    checks.append(_check_model("embedder", embedder_id, deep))
    checks.append(_check_home())
    checks += _check_packages()
    checks.append(_check_recommended())
    return Report(checks)


def _check_recommended() -> Check:
    """Which recommended generators are on this machine (informational: only the default is needed)."""
    from .model_choice import recommended_status

    rows = recommended_status()
    here = [r["model_id"] for r in rows if r["present"]]
    return Check("other models", OK, f"{len(here)} of {len(rows)} recommended models are here: "
                 + (", ".join(here) or "none") + " (python -m workbench model --list)")
