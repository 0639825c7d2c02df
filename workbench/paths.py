"""Where the workbench keeps its state.

All state lives under one root, ``WORKBENCH_HOME`` (default ``~/.workbench``)::

    $WORKBENCH_HOME/
      models/            converted model caches (GGUF -> safetensors); WORKBENCH_MODELS_DIR moves it
      workspaces/NAME/   one folder per workspace: index, adapters, runs, settings

Tests point ``WORKBENCH_HOME`` at a temporary folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

DEFAULT_WORKSPACE = "default"
#: The file in an adapter folder that describes it (base model, config, data, figures).
ADAPTER_META = "workbench-adapter.json"
_WORKSPACE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # fullmatch: "name\n" is refused


def home() -> Path:
    """The root folder of all workbench state (created on first use)."""
    root = Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".workbench").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def portable(data: bytes) -> bytes:
    """A download's bytes with this server's data folder written as ``$WORKBENCH_HOME``: records keep their
    paths inside it (an adapter's folder, say), and the server's own folders stay its business."""
    return data.replace(str(home()).encode(), b"$WORKBENCH_HOME")


def models_dir() -> Path:
    """Folder for converted model caches (``WORKBENCH_MODELS_DIR`` overrides, e.g. to share it)."""
    override = os.environ.get("WORKBENCH_MODELS_DIR")
    path = Path(override).expanduser() if override else home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def validate_workspace_name(name: str) -> str:
    """Return ``name`` if it is a valid workspace name, else raise ``ConfigError``.

    Names are never used as paths without this check, so ``../x`` or ``a/b`` cannot escape.
    """
    if not isinstance(name, str) or not _WORKSPACE_RE.fullmatch(name):
        raise ConfigError(
            "Expected a workspace name of 1-40 characters: lowercase letters, digits, '-' or '_', "
            f"starting with a letter or digit; got {name!r}."
        )
    return name


def workspaces_dir() -> Path:
    path = home() / "workspaces"
    path.mkdir(parents=True, exist_ok=True)
    return path


def workspace_dir(name: str = DEFAULT_WORKSPACE, *, create: bool = True) -> Path:
    """The folder of workspace ``name`` (created unless ``create=False``)."""
    path = workspaces_dir() / validate_workspace_name(name)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def list_workspaces(*, existing: bool = False) -> list[str]:
    """Names of existing workspaces, sorted; the default one is listed even before it exists (a choice to
    open) unless ``existing`` (what is on the server: the facilitator's table, the leaderboard, the export)."""
    names = {p.name for p in workspaces_dir().iterdir() if p.is_dir() and _WORKSPACE_RE.fullmatch(p.name)}
    if not existing:
        names.add(DEFAULT_WORKSPACE)
    return sorted(names)


def record_file(folder: Path, record_id: str, what: str = "run") -> Path:
    """``folder/<record_id>.json`` for an id of letters, digits and dashes (never a path of its own)."""
    from .errors import DataError

    if not isinstance(record_id, str) or not record_id or not all(c.isalnum() or c == "-" for c in record_id):
        raise DataError(f"Expected a {what} id of letters, digits and dashes, got {record_id!r}.")
    return folder / f"{record_id}.json"
