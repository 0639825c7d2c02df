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
import logging
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

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


_protected = False


def protect_data_folder() -> None:
    """On a shared server other local accounts must not read attendees' work: files and folders made from
    here on are the server account's alone (umask 077), and the data folder and its workspaces folder are
    closed to others (0700), which also shuts everything made under them before. Once per process."""
    global _protected
    if _protected:
        return
    os.umask(0o077)
    for folder in (paths.home(), paths.workspaces_dir()):
        os.chmod(folder, 0o700)
    _protected = True


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


# Written by merely opening a page: an index with no document (its manifest and Chroma's files) and the
# Costs page's projection inputs. A workspace holding nothing else has no work in it.
_VISIT_FILES = {"projection.json"}
_on_remove: list[Callable[[str], None]] = []


def on_remove(hook: Callable[[str], None]) -> None:
    """Call ``hook(name)`` before an empty workspace is removed (the index forgets its open handles)."""
    _on_remove.append(hook)


def _is_empty(folder: Path) -> bool:
    """No work in it: no document indexed, and no file but those a page visit writes."""
    if (read_json(folder / "index" / "manifest.json", {}) or {}).get("documents"):
        return False
    for f in folder.rglob("*"):
        if f.is_file():
            rel = f.relative_to(folder)
            if rel.parts[0] != "index" and rel.as_posix() not in _VISIT_FILES:
                return False
    return True


def cleanup_empty(max_age_s: float = EMPTY_MAX_AGE_S, now: float | None = None) -> list[str]:
    """Remove private workspaces that hold no work (``_is_empty``: at most the files opening a page writes)
    and were last changed more than ``max_age_s`` ago (a visit that never did anything). Returns the names
    removed."""
    t = time.time() if now is None else now
    removed = []
    for folder in paths.workspaces_dir().iterdir():
        if not folder.is_dir() or not is_private_name(folder.name):
            continue
        try:
            newest = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.rglob("*")])
            if t - newest > max_age_s and _is_empty(folder):
                for hook in _on_remove:
                    hook(folder.name)
                shutil.rmtree(folder)
                removed.append(folder.name)
        except OSError:  # removed meanwhile, or a file appeared: leave it
            continue
    if removed:
        log.info("removed %d empty workspace(s)", len(removed))
    return removed
