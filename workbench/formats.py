"""Format checks: does an answer follow the trained house format?

A check is a regular expression the whole answer must match, or a list of line prefixes that must
each start a line, in order. The sample data's format (Summary / Answer / Sources lines) is the default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ConfigError

DEFAULT_PATTERN = r"Summary: .+\nAnswer: .+\nSources: .+"


@dataclass(frozen=True)
class FormatCheck:
    """How to decide whether an answer follows the format."""

    kind: str = "regex"
    """``regex`` (the whole answer must match) or ``lines`` (required line prefixes, in order)."""
    pattern: str = DEFAULT_PATTERN
    """The regular expression, for ``regex``."""
    lines: tuple[str, ...] = field(default_factory=lambda: ("Summary:", "Answer:", "Sources:"))
    """Required line prefixes, for ``lines``."""

    def __post_init__(self) -> None:
        if self.kind not in {"regex", "lines"}:
            raise ConfigError(f"Expected a format check of kind 'regex' or 'lines', got {self.kind!r}.")
        if self.kind == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"Expected a valid regular expression, got {self.pattern!r}: {exc}.") from None
        elif not [line for line in self.lines if line.strip()]:
            raise ConfigError("Expected at least one required line prefix, got none.")

    def passes(self, text: str) -> bool:
        text = text.strip()
        if self.kind == "regex":
            return re.fullmatch(self.pattern, text) is not None
        found = [line.strip() for line in text.splitlines() if line.strip()]
        pos = 0
        for prefix in (p for p in self.lines if p.strip()):
            while pos < len(found) and not found[pos].startswith(prefix):
                pos += 1
            if pos == len(found):
                return False
            pos += 1
        return True


def compliance(texts: list[str], check: FormatCheck) -> float:
    """Share of ``texts`` that pass ``check`` (0..1)."""
    return sum(check.passes(t) for t in texts) / len(texts) if texts else 0.0
