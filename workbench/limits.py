"""Limits that keep one shared server usable: each is an environment variable with a default, and
each, when hit, says which limit it was and how to raise it.

| limit | variable | default |
|---|---|---|
| one uploaded file | ``WORKBENCH_MAX_UPLOAD_MB`` | 50 MB (Streamlit's own ``server.maxUploadSize`` caps uploads too) |
| documents per workspace | ``WORKBENCH_MAX_DOCUMENTS`` | 500 |
| training pairs per file | ``WORKBENCH_MAX_PAIRS`` | 20,000 |
| optimisation steps per training | ``WORKBENCH_MAX_TRAIN_STEPS`` | 5,000 |
| questions per test set | ``WORKBENCH_MAX_QUESTIONS`` | 2,000 |
| jobs running at once | ``WORKBENCH_MAX_JOBS`` | 1 (the rest wait in a queue) |
| jobs waiting or running per workspace and lane, in workshop mode | ``WORKBENCH_MAX_JOBS_PER_WORKSPACE`` | 2 |
"""

from __future__ import annotations

import os

from .errors import ConfigError, DataError

DEFAULTS = {
    "WORKBENCH_MAX_UPLOAD_MB": 50,
    "WORKBENCH_MAX_DOCUMENTS": 500,
    "WORKBENCH_MAX_PAIRS": 20_000,
    "WORKBENCH_MAX_TRAIN_STEPS": 5_000,
    "WORKBENCH_MAX_QUESTIONS": 2_000,
    "WORKBENCH_MAX_JOBS": 1,
    "WORKBENCH_MAX_JOBS_PER_WORKSPACE": 2,
}
WHAT = {
    "WORKBENCH_MAX_UPLOAD_MB": "MB per uploaded file",
    "WORKBENCH_MAX_DOCUMENTS": "documents per workspace",
    "WORKBENCH_MAX_PAIRS": "training pairs per file",
    "WORKBENCH_MAX_TRAIN_STEPS": "optimisation steps per training",
    "WORKBENCH_MAX_QUESTIONS": "questions per test set",
    "WORKBENCH_MAX_JOBS": "jobs running at once",
    "WORKBENCH_MAX_JOBS_PER_WORKSPACE": "jobs waiting or running per workspace (workshop mode)",
}


class LimitError(DataError):
    """A configured limit was reached."""


def value(name: str) -> int:
    """The limit's current value (environment, else the default)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULTS[name]
    try:
        number = int(raw)
    except ValueError:
        raise ConfigError(f"Expected {name} to be a whole number, got {raw!r}.") from None
    if number < 1:
        raise ConfigError(f"Expected {name} to be 1 or more, got {number}.")
    return number


def exceeded(name: str, found: int | float, what: str = "") -> LimitError:
    """The error for ``found`` over the limit ``name``."""
    limit = value(name)
    return LimitError(f"{what + ': ' if what else ''}the limit is {limit:,} {WHAT[name]}, found {found:,}.",
                      fix=f"Raise it by starting the app with {name}={max(int(found), limit * 2)} (the server "
                          "administrator's setting).")


def table() -> list[dict[str, object]]:
    """Every limit with its current value and where it comes from (for the Home page)."""
    return [{"limit": WHAT[name], "value": value(name), "variable": name,
             "source": "environment" if os.environ.get(name) else "default"} for name in DEFAULTS]
