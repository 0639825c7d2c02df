"""The servers a workshop may use: the operator's allow-list, and the check every model id and Chroma
address passes before the server connects anywhere.

In workshop mode (``WORKBENCH_WORKSHOP=1``) visitors pick remote models, remote embedders and Chroma
servers from this list by name; they cannot type a URL, a local path (``hf:/etc``) or a hub id. The
packaged offline models are always allowed. Outside workshop mode nothing is checked here (one person on
their own machine); keys follow their own rule everywhere (``openai_compat.compat_key_for``).

The list comes from ``WORKBENCH_SERVERS`` (a JSON file's path, or the JSON itself) or, failing that,
``$WORKBENCH_HOME/servers.json``::

    {"generators": {"Team Llama 3.1 8B": "compat:http://10.0.0.5:8000/v1#llama-3.1-8b",
                    "GPT-4o mini": "openai:gpt-4o-mini"},
     "embedders": {"Team embedder": "compat:http://10.0.0.5:8001/v1#bge-small"},
     "chroma": {"Team Chroma": "http://10.0.0.5:8002"}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import ConfigError

ENV_SERVERS = "WORKBENCH_SERVERS"
SERVERS_FILE = "servers.json"
KINDS = {"generators": "generator", "embedders": "embedder", "chroma": "chroma"}


@dataclass(frozen=True)
class Server:
    """One allowed server."""

    name: str
    """What visitors see and pick."""
    kind: str
    """``generator``, ``embedder`` or ``chroma``."""
    id: str
    """The model id (``compat:URL#MODEL``, ``openai:MODEL``, ``hf:...``) or the Chroma URL."""


def _source() -> tuple[str, str] | None:
    """(where from, JSON text) of the allow-list, or None when none is configured."""
    raw = os.environ.get(ENV_SERVERS, "").strip()
    if raw.startswith("{"):
        return ENV_SERVERS, raw
    path = Path(raw).expanduser() if raw else paths.home() / SERVERS_FILE
    if not path.exists():
        if raw:
            raise ConfigError(f"Expected {ENV_SERVERS} to be a JSON file's path or JSON text; there is no file {path}.")
        return None
    return str(path), path.read_text(encoding="utf-8")


def allowed(kind: str | None = None) -> list[Server]:
    """The operator's servers (of ``kind`` when given), in the listed order."""
    found = _source()
    if found is None:
        return []
    where, text = found
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Expected the server list in {where} to be JSON; line {exc.lineno}: {exc.msg}.") from None
    if not isinstance(data, dict) or set(data) - set(KINDS):
        raise ConfigError(f"Expected the server list in {where} to be an object with the keys "
                          f"{', '.join(KINDS)}; found {sorted(data) if isinstance(data, dict) else type(data).__name__}.")
    out = []
    for key, entries in data.items():
        if not isinstance(entries, dict) or not all(isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
                                                    for k, v in entries.items()):
            raise ConfigError(f"Expected {key!r} in {where} to map names to ids (text to text).")
        for name, ident in entries.items():
            if KINDS[key] == "chroma" and not ident.startswith(("http://", "https://")):
                raise ConfigError(f"Expected the Chroma server {name!r} in {where} to be an http(s) URL, got {ident!r}.")
            out.append(Server(name.strip(), KINDS[key], ident.strip()))
    return [s for s in out if kind is None or s.kind == kind]


def restricted() -> bool:
    """Whether ids are checked against the allow-list (workshop mode)."""
    from .workshop import workshop_mode

    return workshop_mode()


def check_model(kind: str, model_id: str, packaged: bool = False) -> None:
    """Raise ``ConfigError`` unless ``model_id`` may be used: always outside workshop mode; in it, a
    ``packaged`` model (the registry says so: ``models.check_allowed``) or one the operator listed."""
    if not restricted() or packaged or any(s.id == model_id for s in allowed(kind)):
        return
    names = [s.name for s in allowed(kind)]
    raise ConfigError(
        f"On this workshop server only the models the operator listed can be used; {_shown(model_id)} is not one.",
        fix=(f"Pick one of: {', '.join(names)}." if names else "This server lists none: use the local model.")
        + f" The operator lists servers in {ENV_SERVERS} or {SERVERS_FILE} in the data folder.")


def check_chroma(url: str) -> None:
    """Raise ``ConfigError`` unless the Chroma address may be used (empty: the embedded store, always)."""
    if not url or not restricted() or any(s.id == url for s in allowed("chroma")):
        return
    raise ConfigError(f"On this workshop server only the Chroma servers the operator listed can be used; "
                      f"{_shown(url)} is not one.",
                      fix="Leave it empty for the index embedded in your workspace, or pick a listed server.")


def _shown(ident: str) -> str:
    return repr(ident if len(ident) <= 80 else ident[:77] + "...")


def name_for(kind: str, ident: str) -> str | None:
    """The operator's name for an allowed id, if it has one."""
    return next((s.name for s in allowed(kind) if s.id == ident), None)
