"""Workshop mode: many people on one server, and the facilitator who runs the session.

- Each attendee works in a workspace of their own (a fresh name for each new visitor when workshop
  mode is on); ``workspace_status`` and ``leaderboard`` read every workspace for the facilitator.
- A shared, read-only sample workspace (built once per server from ``sample_data/``, kept outside
  the workspaces folder so nobody can open it for writing) is cloned into one's own in one click.
- The facilitator's passphrase is stored as a salted scrypt hash, never in clear.
- ``memory_report`` says how much memory the server uses and which models it holds (one copy each,
  whatever the number of sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError, DataError
from .store import atomic_write_json, read_json

log = logging.getLogger(__name__)

ENV_WORKSHOP = "WORKBENCH_WORKSHOP"
ENV_PASSPHRASE_HASH = "WORKBENCH_FACILITATOR_HASH"
FACILITATOR_FILE = "facilitator.json"
SAMPLE = "sample"


def workshop_mode() -> bool:
    """On when ``WORKBENCH_WORKSHOP`` is 1/true/yes: new visitors get a fresh workspace and the
    Facilitator page is listed."""
    return os.environ.get(ENV_WORKSHOP, "").strip().lower() in {"1", "true", "yes", "on"}


# -- the facilitator's passphrase ---------------------------------------------------------------------------
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSPHRASE = 8


def hash_passphrase(passphrase: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex); the passphrase itself is not kept anywhere."""
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"Expected a facilitator passphrase of at least {MIN_PASSPHRASE} characters, "
                          f"got {len(passphrase) if isinstance(passphrase, str) else 0}.")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(passphrase.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_passphrase(passphrase: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(passphrase.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def set_passphrase(passphrase: str) -> None:
    """Store the hash under WORKBENCH_HOME (readable by the owner only)."""
    path = paths.home() / FACILITATOR_FILE
    atomic_write_json(path, {"hash": hash_passphrase(passphrase), "set_at": time.time()})
    os.chmod(path, 0o600)


def stored_hash() -> str | None:
    """The hash from ``WORKBENCH_FACILITATOR_HASH`` or, failing that, the stored file."""
    env = os.environ.get(ENV_PASSPHRASE_HASH, "").strip()
    if env:
        return env
    return (read_json(paths.home() / FACILITATOR_FILE, None) or {}).get("hash")


def facilitator_enabled() -> bool:
    return stored_hash() is not None


#: Passphrase tries: one at a time across every session of the server (parallel guessing gains
#: nothing), at most MAX_WRONG_GUESSES wrong ones per GUESS_WINDOW_S in one browser session, and at most
#: SERVER_WRONG_GUESSES for the whole server. A visitor who guesses locks out only their own session;
#: the facilitator, in another, still gets in unless the room guesses 60 times a minute.
MAX_WRONG_GUESSES = 5
SERVER_WRONG_GUESSES = 60
GUESS_WINDOW_S = 60.0
_guess_lock = threading.Lock()
_wrong_guesses: list[float] = []


class TooManyGuesses(Exception):
    """Raised by ``check_facilitator`` while tries are locked out; ``wait_s`` says for how long."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"Too many wrong passphrases; try again in {wait_s:.0f} s.")
        self.wait_s = wait_s


def _recent(times: list[float], t: float) -> list[float]:
    times[:] = [x for x in times if t - x <= GUESS_WINDOW_S]
    return times


def check_facilitator(passphrase: str, now: float | None = None, session_tries: list[float] | None = None) -> bool:
    """Whether ``passphrase`` is the facilitator's. ``session_tries``: the wrong tries of this browser
    session (kept by the caller), limited to MAX_WRONG_GUESSES per GUESS_WINDOW_S; the server as a whole
    allows SERVER_WRONG_GUESSES. Tries are serialised across sessions."""
    mine = session_tries if session_tries is not None else []
    with _guess_lock:
        t = time.time() if now is None else now
        for times, limit in ((_recent(mine, t), MAX_WRONG_GUESSES), (_recent(_wrong_guesses, t), SERVER_WRONG_GUESSES)):
            if len(times) >= limit:
                raise TooManyGuesses(GUESS_WINDOW_S - (t - times[0]))
        stored = stored_hash()
        ok = bool(stored) and verify_passphrase(passphrase, stored)
        if not ok:
            _wrong_guesses.append(t)
            mine.append(t)
        return ok


# -- workspaces for people -------------------------------------------------------------------------------------
_WORDS = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "juniper", "kestrel",
          "lark", "maple", "nova", "orchid", "pine", "quartz", "raven", "sage", "tern", "umber", "vale", "willow")

#: A private workspace name: a short label, then 24 hex digits (96 random bits). In workshop mode the name is
#: the link's secret: a visitor reaches only the workspaces whose link they were given.
PRIVATE_RE = re.compile(r"([a-z0-9][a-z0-9_]{0,14})-([0-9a-f]{24})")
ENV_MAX_NEW = "WORKBENCH_MAX_NEW_WORKSPACES"
DEFAULT_MAX_NEW = 200
NEW_WINDOW_S = 3600.0
#: An empty private workspace (no file in it) older than this is removed by ``cleanup_empty``.
EMPTY_MAX_AGE_S = 3600.0
_new_lock = threading.Lock()
_new_times: dict[str, float] = {}  # private workspace name -> when it was made (this process)
#: When the hourly limit is reached, empty private workspaces older than this are removed first, so
#: that reloading a page many times (each visit without a link makes a workspace) cannot lock others out.
CROWDED_EMPTY_AGE_S = 60.0
CLEANUP_EVERY_S = 60.0
_last_cleanup = 0.0


def is_private_name(name: str) -> bool:
    return isinstance(name, str) and PRIVATE_RE.fullmatch(name) is not None


def short_name(name: str, mark: str = "…") -> str:
    """What people see of a workspace name: a private one's label and first 4 digits (``heron-3f2a…``),
    so that a table on a projected screen, a memo or a file name gives no link away; other names
    unchanged. ``mark`` ends a shortened name ("" for file names)."""
    m = PRIVATE_RE.fullmatch(name) if isinstance(name, str) else None
    return f"{m.group(1)}-{m.group(2)[:4]}{mark}" if m else name


def max_new_per_hour() -> int:
    raw = os.environ.get(ENV_MAX_NEW, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_NEW
    except ValueError:
        raise ConfigError(f"Expected {ENV_MAX_NEW} to be a whole number, got {raw!r}.") from None
    if value < 1:
        raise ConfigError(f"Expected {ENV_MAX_NEW} to be 1 or more, got {value}.")
    return value


class TooManyWorkspaces(DataError):
    """The server made its hourly number of new workspaces."""


def _room_for_one(now: float) -> None:
    """Whether one more workspace fits the hourly limit (workspaces made in the last hour that still
    exist), or raise ``TooManyWorkspaces``. When full, empty ones older than a minute go first."""
    global _last_cleanup
    limit = max_new_per_hour()
    if now - _last_cleanup > CLEANUP_EVERY_S:  # visits that never did anything, an hour on
        _last_cleanup = now
        cleanup_empty(EMPTY_MAX_AGE_S, now)
    for name, t in list(_new_times.items()):
        if now - t > NEW_WINDOW_S or not (paths.workspaces_dir() / name).is_dir():
            _new_times.pop(name, None)
    if len(_new_times) >= limit:
        for name in cleanup_empty(CROWDED_EMPTY_AGE_S, now):
            _new_times.pop(name, None)
    if len(_new_times) >= limit:
        wait = NEW_WINDOW_S - (now - min(_new_times.values()))
        raise TooManyWorkspaces(
            f"This server has made {limit} new workspaces in the last hour that are in use, its limit; the next "
            f"one is possible in {wait / 60:.0f} min at the latest.",
            fix=f"Open your own workspace through its private link, or ask the facilitator (the limit is "
                f"{ENV_MAX_NEW}).")


def fresh_workspace_name(label: str | None = None) -> str:
    """A new, unused workspace (its folder is created) and its name.

    In workshop mode the name is private (``heron-`` and 24 random hex digits, see ``PRIVATE_RE``), counted
    against ``WORKBENCH_MAX_NEW_WORKSPACES`` per hour, and empty ones left behind are cleaned up first.
    Otherwise a short friendly name such as ``guest-heron-3f2a``."""
    private = workshop_mode()
    if label is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,14}", label):
        raise ConfigError(f"Expected a workspace label of 1-15 lowercase letters, digits or '_', got {label!r}.")
    for _ in range(50):
        if private:
            name = f"{label or secrets.choice(_WORDS)}-{secrets.token_hex(12)}"
        else:
            name = f"{label}-{secrets.token_hex(2)}" if label else f"guest-{secrets.choice(_WORDS)}-{secrets.token_hex(2)}"
        folder = paths.workspaces_dir() / name
        if not private:
            try:
                folder.mkdir(parents=True)
                return name
            except FileExistsError:
                continue
        with _new_lock:  # counted and made together: parallel visitors cannot pass the limit
            now = time.time()
            _room_for_one(now)
            try:
                folder.mkdir(parents=True)
            except FileExistsError:
                continue
            _new_times[name] = now
            return name
    raise ConfigError("Could not find a free workspace name; type one on the Home page.")


def may_open(name: str, facilitator: bool = False) -> bool:
    """Whether a visitor may open workspace ``name`` from a link. Outside workshop mode, any valid name (one
    person on their own machine). In workshop mode, only an existing private workspace, whose name is its
    secret; the facilitator may open any."""
    try:
        paths.validate_workspace_name(name)
    except ConfigError:
        return False
    if not workshop_mode() or facilitator:
        return True
    return is_private_name(name) and (paths.workspaces_dir() / name).is_dir()


def _is_empty(folder: Path) -> bool:
    return not any(f.is_file() for f in folder.rglob("*"))


def cleanup_empty(max_age_s: float = EMPTY_MAX_AGE_S, now: float | None = None) -> list[str]:
    """Remove private workspaces that hold no file and were last changed more than ``max_age_s`` ago
    (a visit that never did anything). Returns the names removed."""
    t = time.time() if now is None else now
    removed = []
    for folder in paths.workspaces_dir().iterdir():
        if not folder.is_dir() or not is_private_name(folder.name):
            continue
        try:
            newest = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.rglob("*")])
            if t - newest > max_age_s and _is_empty(folder):
                shutil.rmtree(folder)
                removed.append(folder.name)
        except OSError:  # removed meanwhile, or a file appeared: leave it
            continue
    if removed:
        log.info("removed %d empty workspace(s)", len(removed))
    return removed


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def workspace_status(name: str) -> dict[str, Any]:
    """What a workspace holds, for the facilitator's table."""
    from .eval_runs import list_eval_runs
    from .history import list_runs
    from .index import open_index
    from .jobs import ACTIVE, all_jobs
    from .training import list_adapters

    folder = paths.workspace_dir(name, create=False)
    docs = open_index(name).documents() if folder.exists() else []
    evals = list_eval_runs(name) if folder.exists() else []
    files = [f for f in folder.rglob("*") if f.is_file()] if folder.exists() else []
    jobs = [j for j in all_jobs(name) if j.status in ACTIVE]
    return {
        "workspace": name, "label": short_name(name), "documents": len(docs), "adapters": len(list_adapters(name)) if folder.exists() else 0,
        "questions": len(list_runs(name)) if folder.exists() else 0,
        "evaluations": len(evals), "finished_evaluations": sum(e.get("status") == "done" for e in evals),
        "jobs": ", ".join(f"{j.kind} ({j.status})" for j in jobs) or "none",
        "last_activity": max((f.stat().st_mtime for f in files), default=None),
        "size_mb": round(_size_mb(folder), 1) if folder.exists() else 0.0,
    }


def leaderboard(hardware_per_hour: float = 0.0) -> list[dict[str, Any]]:
    """One row per workspace and approach, from each workspace's latest finished evaluation run."""
    from .decision import latest_run
    from .eval_summary import summarize
    from .strategies import LABELS

    rows = []
    for name in paths.list_workspaces():
        run = latest_run(name)
        if run is None:
            continue
        summary = summarize(run, hardware_per_hour)
        for mode, s in summary.items():
            rows.append({"workspace": short_name(name), "approach": LABELS.get(mode, mode), "correct": s.get("correct_answerable"),
                         "f1": s.get("f1"), "format_ok": s.get("format_ok"), "latency_p50_s": s.get("latency_p50_s"),
                         "cost_per_1k_usd": s.get("cost_per_1k_usd"), "questions": run["done"], "run": run["id"]})
    return sorted(rows, key=lambda r: (-(r["correct"] or 0), r["latency_p50_s"] or 0))


def _busy(name: str) -> None:
    from .jobs import ACTIVE, all_jobs

    jobs = [j for j in all_jobs(name) if j.status in ACTIVE]
    if jobs:
        raise DataError(f"Workspace {name!r} has {len(jobs)} job(s) queued or running ({jobs[0].label}); "
                        "cancel them first.")


def reset_workspace(name: str) -> None:
    """Empty a workspace (index, adapters, runs, settings); the name stays."""
    from .index import close_workspace

    _busy(name)
    folder = paths.workspace_dir(name, create=False)
    close_workspace(name)
    trash = _to_trash(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _empty_trash(trash)
    log.info("workspace %s reset", name)


def delete_workspace(name: str) -> None:
    from .index import close_workspace

    _busy(name)
    folder = paths.workspace_dir(name, create=False)
    close_workspace(name)
    _empty_trash(_to_trash(folder))
    log.info("workspace %s deleted", name)


def _to_trash(folder: Path) -> Path | None:
    """Move a workspace folder out of sight in one atomic rename: from here on it is either whole or gone,
    never half-deleted under its own name (a crash during the removal leaves only a hidden folder)."""
    if not folder.exists():
        return None
    trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}-{secrets.token_hex(3)}")
    folder.rename(trash)
    return trash


def _empty_trash(trash: Path | None) -> None:
    """Remove a trashed folder, and any left by an earlier interrupted removal."""
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    for left in trash.parent.glob(".trash-*") if trash is not None else ():
        shutil.rmtree(left, ignore_errors=True)


#: What "export all results" holds: the records, not the index or the adapter weights.
_EXPORTED = ("history", "evaluations", "jobs")
_EXPORTED_FILES = ("prices.json", "projection.json", "decision.json")


def export_all(hardware_per_hour: float = 0.0) -> bytes:
    """A zip of every workspace's results (compare history, evaluation runs, job records, cost and
    decision inputs, adapter records) plus the leaderboard as CSV and JSON."""
    from .store import csv_bytes

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in paths.list_workspaces():
            folder = paths.workspace_dir(name, create=False)
            if not folder.exists():
                continue
            for sub in _EXPORTED:
                for f in sorted((folder / sub).glob("*.json")) if (folder / sub).is_dir() else []:
                    zf.write(f, f"{name}/{sub}/{f.name}")
            for fname in _EXPORTED_FILES:
                if (folder / fname).exists():
                    zf.write(folder / fname, f"{name}/{fname}")
            for meta in sorted((folder / "adapters").glob("*/workbench-adapter.json")):
                zf.write(meta, f"{name}/adapters/{meta.parent.name}.json")
        rows = leaderboard(hardware_per_hour)
        zf.writestr("leaderboard.json", json.dumps(rows, indent=1))
        zf.writestr("leaderboard.csv", csv_bytes(rows, None if rows else ["workspace"]))
    return buffer.getvalue()


# -- the shared sample workspace ------------------------------------------------------------------------------
_sample_lock = threading.Lock()


def sample_folder() -> Path:
    """The read-only sample workspace: under WORKBENCH_HOME/shared, outside the workspaces folder."""
    return paths.home() / "shared" / SAMPLE


def ensure_sample(progress: Any = None) -> Path:
    """Build the sample workspace once per data folder (the sample documents indexed with the default
    settings); later calls return at once."""
    from .documents import parse_uploads
    from .index import close_folder, open_index_at
    from .samples import sample_documents

    folder = sample_folder()
    with _sample_lock:
        if (folder / ".complete").exists():
            return folder
        work = folder.with_name(f".{SAMPLE}-building-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            index = open_index_at(work / "index")
            documents, _ = parse_uploads(sample_documents())
            index.add_documents(documents, **({"progress": progress} if progress else {}))
            close_folder(work / "index")
            (work / ".complete").write_text(str(time.time()))
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return folder


def clone_sample(target: str, progress: Any = None) -> None:
    """Copy the sample workspace into ``target`` (a new or empty workspace; nothing is overwritten)."""
    from .index import close_workspace

    source = ensure_sample(progress)
    folder = paths.workspace_dir(target, create=False)
    if folder.exists() and any(p for p in folder.iterdir() if p.name != "jobs"):
        raise DataError(f"Expected an empty workspace to copy the sample into; {target!r} already holds work. "
                        "Create a new workspace first (nothing was changed).")
    close_workspace(target)
    tmp = folder.with_name(f".{target}-clone-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".complete"))
    if folder.exists():
        for item in folder.iterdir():  # only a jobs/ folder: keep it
            shutil.move(str(item), tmp / item.name)
        folder.rmdir()
    tmp.rename(folder)
    log.info("sample workspace cloned into %s", target)


# -- memory ---------------------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_report(max_age_s: float = 0.0) -> dict[str, Any]:
    """This server process: resident memory now and at its peak, every model it holds (the heap count
    of model copies may be up to ``max_age_s`` old; see ``models.live_model_copies``), and the most
    distinct adapters decoded in one batch so far."""
    import resource

    from .models import live_model_copies, loaded_model_details, loaded_model_objects

    rss = _status_kb("VmRSS")
    peak = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    copies = live_model_copies(max_age_s)
    mixed = max((getattr(m, "most_adapters_in_batch", 0) for m in loaded_model_objects()), default=0)
    return {"rss_mb": round(rss / 1024, 1) if rss else None, "peak_rss_mb": round(peak / 1024, 1) if peak else None,
            "models": loaded_model_details(), "copies": copies, "model_copies": max(copies.values(), default=0),
            "adapters_in_batch": mixed}
