"""The generator a workspace uses: chosen once (Settings page, or ``python -m workbench model``), then
used by every approach, by training as the base model, and recorded with every answer and adapter.

    generator_for("default")                      # "local:smollm2-135m" until something else is chosen
    choose("default", "local:gemma3-270m")        # checked first: a known id, allowed, weights present
    adapter_mismatch(adapter, "hf:/m.gguf")       # why an adapter cannot run on that model (None: it can)

Also the short list of recommended models per hardware class, and downloading one from the hub
(a job with progress; a clear message when the hub cannot be reached).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import models, paths
from .config import DEFAULT_GENERATOR
from .errors import BackendError, ConfigError, MissingDependencyError, WorkbenchError
from .progress import ProgressEvent, ProgressSink, null_sink
from .records import Adapter
from .store import atomic_write_json, read_json

CHOICE_FILE = "model.json"


def _file(workspace: str) -> Path:
    return paths.workspace_dir(workspace) / CHOICE_FILE


def generator_for(workspace: str) -> str:
    """The generator id the workspace answers and trains with (the packaged default until one is chosen,
    and again when the chosen one is no longer allowed on this server)."""
    data = read_json(_file(workspace), {}) if paths.workspace_dir(workspace, create=False).exists() else {}
    chosen = data.get("generator") if isinstance(data, dict) else None
    if not isinstance(chosen, str) or not chosen:
        return DEFAULT_GENERATOR
    try:
        models.find_entry("generator", chosen)
        models.check_allowed("generator", chosen)
    except ConfigError:
        return DEFAULT_GENERATOR
    return chosen


def check_choice(model_id: str) -> str:
    """``model_id`` cleaned, or a ``WorkbenchError`` that says why it cannot be used: an unknown kind of
    id, one this server does not allow (workshop mode), or local weights that are not on this machine."""
    model_id = model_id.strip()
    if not model_id:
        raise ConfigError("Expected a model id, got an empty one.")
    if len(model_id) > 500:
        raise ConfigError(f"Expected a model id of at most 500 characters, got {len(model_id)}.")
    try:
        entry = models.find_entry("generator", model_id)
    except ConfigError as exc:
        if model_id.startswith(("/", "./", "~")) or model_id.endswith(".gguf"):  # a path without its kind
            raise ConfigError(f"{exc} A local folder or .gguf file is chosen as hf:{model_id}.") from None
        raise
    models.check_allowed("generator", model_id)
    if model_id.startswith("compat:"):
        from .generation.openai_compat import parse_compat_id

        parse_compat_id(model_id)  # a ConfigError that shows the expected shape
    if not entry.remote:
        where = entry.locate(model_id)
        if not where.present:
            raise MissingDependencyError(f"{model_id} cannot be used: {where.detail}", fix=where.fix)
    return model_id


def choose(workspace: str, model_id: str) -> str:
    """Check ``model_id`` (see ``check_choice``) and remember it for the workspace; returns the id."""
    model_id = check_choice(model_id)
    atomic_write_json(_file(workspace), {"generator": model_id, "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return model_id


def same_model(a: str, b: str) -> bool:
    """Whether two generator ids name the same weights (the packaged GGUF opened by its path is the
    packaged model; two hub ids of one repository are one model)."""
    a, b = models.canonical_id(a), models.canonical_id(b)
    if a == b:
        return True
    hub_a, hub_b = models.hub_id(a), models.hub_id(b)
    return hub_a is not None and hub_a == hub_b


def adapter_mismatch(adapter: Adapter | None, model_id: str) -> str | None:
    """Why ``adapter`` cannot run on generator ``model_id`` (None when it can, or when there is none)."""
    if adapter is None or same_model(adapter.base_model, model_id):
        return None
    return (f"Adapter {adapter.name!r} was trained on {adapter.base_model}, and this workspace's model is {model_id}. "
            "An adapter only works on the model it was trained on: train one on this model (Fine-tune page), "
            "or choose that model again on the Settings page.")


def adapter_base(adapter_path: str | None) -> Adapter | None:
    """The adapter stored at ``adapter_path`` (None when there is none there)."""
    if not adapter_path:
        return None
    meta = read_json(Path(adapter_path) / paths.ADAPTER_META, None)
    return Adapter.from_meta(meta, str(adapter_path)) if isinstance(meta, dict) else None


# -- recommended models ------------------------------------------------------------------------

@dataclass(frozen=True)
class Recommended:
    """A model worth trying on a kind of hardware."""

    model_id: str
    name: str
    params: int
    hardware: str
    """``CPU laptop`` or ``one GPU``."""
    speed: str
    """Where its speed figure comes from; "not measured here" when there is none."""
    note: str

    @property
    def hub(self) -> str | None:
        return models.hub_id(self.model_id)

    @property
    def size_text(self) -> str:
        bf16 = self.params * 2 / 1e9
        count = f"{self.params / 1e6:.0f}M" if self.params < 1e9 else f"{self.params / 1e9:.1f}B"
        return f"{count} parameters, ~{bf16:.1f} GB in bf16" if bf16 >= 0.1 else f"{count} parameters"


#: Parameter counts from each model's hub card; a speed only where this project's benchmarks measured one.
RECOMMENDED: tuple[Recommended, ...] = (
    Recommended(DEFAULT_GENERATOR, "SmolLM2-135M-Instruct (packaged)", 135_000_000, "CPU laptop",
                "25-42 tokens/s on 2 CPU cores in seven runs on 2026-12-03, about half of llama.cpp's speed in "
                "the same runs (bench/generate.py)",
                "The offline default. At 135M parameters its quality will not carry over to a production model."),
    Recommended("local:gemma3-270m", "Gemma 3 270M (packaged, base model)", 268_000_000, "CPU laptop",
                "14.5 tokens/s on 2 CPU cores, 2026-12-03; llama.cpp 26.6 in the same run (bench/generate.py)", "Not instruction-tuned: for switching and training, not for good answers."),
    Recommended("hf:HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2-360M-Instruct", 362_000_000, "CPU laptop",
                "not measured here", "The default's family, 2.7x the parameters."),
    Recommended("hf:Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct", 494_000_000, "CPU laptop",
                "not measured here", "Another family under 1B parameters, to see whether the verdict holds across models."),
    Recommended("hf:HuggingFaceTB/SmolLM2-1.7B-Instruct", "SmolLM2-1.7B-Instruct", 1_710_000_000, "one GPU",
                "not measured here", "The default's family at 1.7B parameters."),
    Recommended("hf:Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5-1.5B-Instruct", 1_540_000_000, "one GPU",
                "not measured here", "An instruct model of 1.5B parameters."),
    Recommended("hf:Qwen/Qwen2.5-3B-Instruct", "Qwen2.5-3B-Instruct", 3_090_000_000, "one GPU",
                "not measured here", "An instruct model of 3B parameters; train it with QLoRA on the GPU."),
)


def recommended_status() -> list[dict[str, Any]]:
    """Each recommended model with whether its weights are on this machine (nothing is loaded)."""
    out = []
    for r in RECOMMENDED:
        try:
            where = models.locate("generator", r.model_id)
            present, detail = where.present, where.detail
        except Exception as exc:  # an entry that cannot even be located
            present, detail = False, str(exc)
        out.append({"model_id": r.model_id, "name": r.name, "hardware": r.hardware, "size": r.size_text,
                    "speed": r.speed, "note": r.note, "present": present, "where": detail})
    return out


# -- downloading from the hub ------------------------------------------------------------------

#: What a causal LM needs to load with transformers (no pickled weights: safetensors only).
_PATTERNS = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja"]


def hub_download_id(model_id: str) -> str | None:
    """The hub repository :func:`download` would fetch for ``model_id`` (None: a packaged, local or remote
    model, which has nothing to download)."""
    return models.hub_id(model_id) if model_id.startswith("hf:") else None


def download(model_id: str, progress: ProgressSink = null_sink, cancel: Any = None) -> str:
    """Download an ``hf:`` hub model into the Hugging Face cache (safetensors and tokenizer files only),
    reporting bytes as progress. A ``BackendError`` with a plain message when the hub cannot be reached."""
    if not model_id.startswith("hf:"):
        raise ConfigError(f"Expected a hub model id like hf:ORG/NAME to download, got {model_id!r}.")
    repo = models.hub_id(model_id)
    if repo is None:
        raise ConfigError(f"{model_id} is a local path, not a hub model: there is nothing to download.")
    models.check_allowed("generator", model_id)
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub is not installed.", fix="make install") from exc
    progress(ProgressEvent("download", 0, None, f"Asking the Hugging Face hub for {repo}"))
    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=15)
    except Exception as exc:  # offline, DNS, proxy, gated, missing
        raise BackendError(_hub_message(repo, exc),
                           fix="On a machine with internet, download the model to a folder and choose that folder "
                               "(hf:/path/to/folder), or copy the Hugging Face cache here.") from exc
    files = [(s.rfilename, s.size or 0) for s in info.siblings or [] if _wanted(s.rfilename)]
    if not any(name.endswith(".safetensors") for name, _ in files):
        raise ConfigError(f"{repo} has no safetensors weights; the workbench loads only safetensors (no pickled code).")
    total = sum(size for _, size in files)
    done = 0
    for i, (name, size) in enumerate(files):
        if cancel is not None and cancel.is_set():
            from .errors import CancelledError

            raise CancelledError(f"Download of {repo} cancelled; the files already fetched stay in the cache.")
        label = f"{name} ({i + 1} of {len(files)}, {size / 1e6:,.0f} MB)"
        progress(ProgressEvent("download", done, total, label, metrics={"bytes": done, "total_bytes": total}))
        try:
            hf_hub_download(repo, name, tqdm_class=byte_bar(progress, done, total, label))
        except Exception as exc:
            raise BackendError(_hub_message(repo, exc)) from exc
        done += size
    progress(ProgressEvent("download", total, total, f"{repo} is in the Hugging Face cache",
                           metrics={"bytes": total, "total_bytes": total}))
    return model_id


def byte_bar(progress: ProgressSink, done_before: int, total: int, label: str, every_s: float = 0.5) -> type:
    """A tqdm class for ``hf_hub_download`` that reports the bytes of one file, on top of the
    ``done_before`` bytes of the files before it, as download progress (at most every ``every_s``)."""
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # nothing printed: the sink shows it
            super().__init__(*args, **kwargs)
            self.sent, self.last = 0, 0.0

        def update(self, n: float | None = 1) -> bool | None:
            self.sent += int(n or 0)
            now = time.monotonic()
            if now - self.last >= every_s:
                self.last = now
                bytes_done = min(total, done_before + self.sent)
                progress(ProgressEvent("download", bytes_done, total, label,
                                       metrics={"bytes": bytes_done, "total_bytes": total}))
            return super().update(n)

    return Bar


def _wanted(name: str) -> bool:
    from fnmatch import fnmatch

    return "/" not in name and any(fnmatch(name, p) for p in _PATTERNS)


def _hub_message(repo: str, exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    kinds = " ".join(c.__name__ for c in type(exc).__mro__)
    if any(word in kinds for word in ("Connect", "Timeout", "Offline", "Network")) or any(
            word in text for word in ("Name or service not known", "resolve", "offline", "timed out", "Max retries",
                                      "unreachable")):
        return f"The Hugging Face hub cannot be reached from this server, so {repo} cannot be downloaded now."
    if "401" in text or "403" in text or "gated" in text.lower():
        return f"{repo} needs a Hugging Face login or an accepted licence (set HF_TOKEN on the server)."
    if "404" in text or "RepositoryNotFound" in text:
        return f"There is no model {repo} on the Hugging Face hub."
    return f"Could not download {repo}: {text[:300]}"


def describe(workspace: str) -> dict[str, Any]:
    """The workspace's model in a few fields, for the sidebar, Home and ``doctor``."""
    model_id = generator_for(workspace)
    data = read_json(_file(workspace), {}) if paths.workspace_dir(workspace, create=False).exists() else {}
    remote = models.is_remote(model_id)
    return {"model_id": model_id, "note": models.model_note(model_id)[0],
            "chosen_at": data.get("chosen_at") if isinstance(data, dict) and data.get("generator") == model_id else None,
            "remote": remote, "decode": None if remote else _decode_note(model_id)}


def _decode_note(model_id: str) -> str:
    """How local models decode here and, once ``model_id`` is loaded, what packing did to it."""
    from . import runtime

    try:
        note = runtime.decode_weights_note(runtime.pick_device())
    except WorkbenchError as exc:
        return str(exc).replace("\nFix: ", " ")
    if ("generator", model_id) in models.loaded_models():
        packing = getattr(models.get_generator(model_id), "packing", None)
        if packing is not None:
            note += f" Loaded now: {packing.label()}."
    return note
