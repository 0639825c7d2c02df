"""The workbench's error tree.

Every error a user can cause or fix is a ``WorkbenchError``: pages show it with ``st.error``, the
CLI prints it and exits with code 2. Any other exception is a bug and propagates.
Messages follow the form "Expected X, got Y" and, for data files, name the file and line.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the user can act on."""

    #: A short hint on how to fix it (a command, a setting); shown under the message.
    fix: str | None = None

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(message)
        if fix is not None:
            self.fix = fix

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\nFix: {self.fix}" if self.fix else base


class DataError(WorkbenchError):
    """Input data (an upload, a file, a row) is not what was expected."""


class ConfigError(WorkbenchError):
    """A setting, id or combination of settings is invalid."""


class MissingDependencyError(WorkbenchError):
    """An optional package or a packaged model is not installed."""


class ModelLoadError(WorkbenchError):
    """A model could not be found or loaded."""


class BackendError(WorkbenchError):
    """A generation or embedding backend failed (server down, bad key, timeout)."""


class CancelledError(WorkbenchError):
    """Long work was cancelled by the user."""
