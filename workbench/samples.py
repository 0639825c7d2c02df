"""The bundled sample data: a small fictional company (see sample_data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .errors import MissingDependencyError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def sample_dir() -> Path:
    if not (SAMPLE_DIR / "documents").is_dir():
        raise MissingDependencyError(f"Expected the sample data at {SAMPLE_DIR}; it is not there.",
                                     fix="Run the app from a full checkout of the project.")
    return SAMPLE_DIR


def sample_documents() -> list[tuple[str, bytes]]:
    """(file name, bytes) of every sample document, as an upload would give them."""
    return [(p.name, p.read_bytes()) for p in sorted((sample_dir() / "documents").iterdir()) if p.is_file()]


def sample_document_names() -> set[str]:
    return {p.name for p in (sample_dir() / "documents").iterdir() if p.is_file()}


def looks_like_sample(doc_names: Iterable[str]) -> bool:
    """Whether a workspace works on the sample company: its index holds a sample document, or nothing yet.
    The sample's pairs, test set and questions are then the natural defaults; a workspace of one's own
    documents starts from one's own data instead."""
    names = set(doc_names)
    return not names or bool(names & sample_document_names())


def updated_document(name: str = "returns-policy.md") -> tuple[str, bytes]:
    path = sample_dir() / "updated" / name
    return path.name, path.read_bytes()


def eval_rows() -> list[dict[str, Any]]:
    lines = (sample_dir() / "eval_set.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
