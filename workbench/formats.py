"""Format checks: does an answer follow the trained house format?

A check is a regular expression the whole answer must match, or a list of line prefixes that must
each start a line, in order. A workspace's check is read from its own training pairs (the line labels
most of their answers share, in order: ``workspace_check``); the sample data's format (Summary / Answer /
Sources lines) is the fallback where there are no pairs to read it from.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import regex

from .errors import ConfigError

DEFAULT_PATTERN = r"Summary: .+\nAnswer: .+\nSources: .+"
MATCH_TIMEOUT_S = 0.5
_LABEL = re.compile(r"^\s*([A-Z][\w /-]{0,24}):\s")


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
            # A typed pattern such as "(.+)+Z" can take exponential time; on a shared server that would stall
            # every session, so the match runs with a time limit (the ``regex`` module's, same syntax as re).
            try:
                return regex.fullmatch(self.pattern, text, timeout=MATCH_TIMEOUT_S) is not None
            except TimeoutError:
                raise ConfigError(f"The format pattern {self.pattern!r} took over {MATCH_TIMEOUT_S} s on one answer "
                                  f"of {len(text)} characters.",
                                  fix="Simplify it: nested repeats such as (.+)+ can take forever.") from None
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


def shared_labels(answers: list[str], share: float = 0.6) -> tuple[str, ...]:
    """The line labels ("Summary", "Answer", "Sources") that at least ``share`` of ``answers`` use as their
    lines, in order; empty when they share none."""
    if not answers:
        return ()
    shapes = Counter(tuple(m.group(1) for line in a.strip().splitlines() if (m := _LABEL.match(line)))
                     for a in answers)
    shape, count = shapes.most_common(1)[0]
    return shape if shape and count >= share * len(answers) else ()


def check_for_labels(labels: tuple[str, ...]) -> FormatCheck:
    """The check that an answer is exactly those labelled lines, one each, in order (the sample's labels
    give ``DEFAULT_PATTERN``)."""
    return FormatCheck("regex", "\\n".join(re.escape(label).replace("\\ ", " ") + ": .+" for label in labels),
                       lines=tuple(f"{label}:" for label in labels))


def workspace_check(workspace: str, adapter: str | Path | None = None) -> tuple[FormatCheck, str]:
    """The format check for answers in ``workspace``, and where it comes from: the line labels shared by the
    answers of the adapter's training pairs (what it learned), else of the workspace's latest training
    pairs, else the sample's format."""
    from . import paths

    candidates = ([(Path(adapter) / "training_pairs.jsonl", "the adapter's training pairs")] if adapter else []) + \
        [(paths.workspace_dir(workspace) / "training_pairs.jsonl", "this workspace's training pairs")]
    for path, origin in candidates:
        try:
            answers = [json.loads(line)["answer"] for line in path.read_text(encoding="utf-8").splitlines()
                       if line.strip()]
        except (OSError, ValueError, KeyError, TypeError):  # missing, or not pairs we wrote: the next candidate
            continue
        if answers:
            labels = shared_labels(answers)
            if labels:
                return check_for_labels(labels), f"the line labels most of {origin} share"
            return FormatCheck(), f"the sample's format: {origin} share no line labels"
    return FormatCheck(), "the sample's format: no training pairs in this workspace yet"
