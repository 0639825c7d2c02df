"""Shared benchmark plumbing: every bench prints a table and, with --json PATH, writes one flat
JSON object (figure name -> number)."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", metavar="PATH", help="also write the figures as one flat JSON object")
    return p


def machine() -> str:
    from workbench.runtime import available_cpus

    return f"{platform.machine()}, {available_cpus()} CPU cores, Python {platform.python_version()}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(title: str, rows: list[tuple[str, float, str]], json_path: str | None) -> None:
    """Print ``rows`` (key, value, unit/note) as a table; write ``{key: value}`` to ``json_path``."""
    print(f"\n{title}\n{machine()}\n")
    width = max(len(k) for k, _, _ in rows)
    for key, value, note in rows:
        print(f"  {key.ljust(width)}  {value:>10.3f}  {note}")
    if json_path:
        Path(json_path).write_text(json.dumps({k: round(v, 4) for k, v, _ in rows}, indent=2) + "\n")
        print(f"\nwrote {json_path}")
