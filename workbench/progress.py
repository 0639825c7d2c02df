"""Progress reporting for long work (indexing, training, evaluation, model conversion).

The core never prints or draws. A long function takes a ``ProgressSink`` and calls it with
``ProgressEvent``s; the CLI passes a tqdm sink, Streamlit a status/progress sink (in
``workbench.ui``), tests a ``ListSink``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ProgressEvent:
    """One step of long work."""

    stage: str
    """What is happening, e.g. ``convert``, ``embed``, ``train``."""
    step: int = 0
    """Steps done so far in this stage."""
    total: int | None = None
    """Total steps of the stage, when known."""
    message: str = ""
    """A short human-readable line."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Numbers worth showing (loss, tokens/s ...)."""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))


class ProgressSink(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


def null_sink(event: ProgressEvent) -> None:
    """A sink that ignores everything."""


class ListSink:
    """Collects events in ``.events`` (for tests)."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def stages(self) -> list[str]:
        return [e.stage for e in self.events]


class TqdmSink:
    """Renders events as tqdm bars on stderr, one bar per stage (for the CLI)."""

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = tqdm(total=event.total, desc=event.stage, leave=True, dynamic_ncols=True)
            self._bars[event.stage] = bar
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.n = event.step
        postfix = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in event.metrics.items()}
        if event.message:
            postfix["info"] = event.message
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
