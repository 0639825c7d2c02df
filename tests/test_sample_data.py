"""The sample workspace's data is complete and consistent: every format present, pairs in the house
format, evaluation questions pointing at real documents."""

import json
import re
from collections import Counter

from tests.conftest import ROOT

SAMPLE = ROOT / "sample_data"
HOUSE_FORMAT = re.compile(r"^Summary: .+\nAnswer: .+\nSources: .+$")


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_documents_cover_every_format():
    docs = sorted((SAMPLE / "documents").iterdir())
    assert 8 <= len(docs) <= 15
    suffixes = Counter(p.suffix for p in docs)
    assert {".md", ".txt", ".pdf", ".docx", ".html"} <= set(suffixes)
    assert (SAMPLE / "updated" / "returns-policy.md").exists()
    assert "45 days" in (SAMPLE / "documents" / "returns-policy.md").read_text()
    assert "30 days" in (SAMPLE / "updated" / "returns-policy.md").read_text()


def test_training_pairs_follow_the_house_format():
    pairs = _jsonl(SAMPLE / "training_pairs.jsonl")
    assert 60 <= len(pairs) <= 100
    names = {p.name for p in (SAMPLE / "documents").iterdir()}
    for pair in pairs:
        roles = [m["role"] for m in pair["messages"]]
        assert roles == ["system", "user", "assistant"]
        answer = pair["messages"][-1]["content"]
        assert HOUSE_FORMAT.match(answer), answer
        sources = answer.rsplit("Sources: ", 1)[1]
        if sources != "none":
            assert {s.strip() for s in sources.split(",")} <= names, sources


def test_eval_set_is_consistent():
    rows = _jsonl(SAMPLE / "eval_set.jsonl")
    assert 40 <= len(rows) <= 60
    assert len({r["id"] for r in rows}) == len(rows)
    names = {p.name for p in (SAMPLE / "documents").iterdir()}
    unanswerable = [r for r in rows if not r["answerable"]]
    assert len(unanswerable) >= 5 and all(r["source"] is None for r in unanswerable)
    assert all(r["source"] in names for r in rows if r["answerable"])
    assert sum("updated_reference" in r for r in rows) >= 4
    train_questions = {p["messages"][1]["content"] for p in _jsonl(SAMPLE / "training_pairs.jsonl")}
    assert not train_questions & {r["question"] for r in rows}
