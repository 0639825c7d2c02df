"""The evidence beside one answer: the expected answer and its verdict, whether retrieval found the
passage that holds the answer (so a wrong answer is attributed to retrieval or to the model), and
sources the answer cites that it was never given (invented, often written from an adapter's memory).

Pure functions over stored answers (dicts as ``history`` keeps them) and test items; no page logic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .evaluation import TestItem, normalise
from .facts import answer_text
from .records import Answer
from .verdicts import Verdict, judge

#: File names an answer may cite: a word, a dot and a document extension.
_RE_FILE = re.compile(r"\b([\w][\w.\-]*\.(?:md|markdown|txt|pdf|docx|html?|csv|json|rst))\b", re.IGNORECASE)
_RE_MARK = re.compile(r"\[(\d{1,2})\]")
#: A web address written as a source ("shipping-policy.net/returns", "https://...", "www...").
_RE_WEB = re.compile(r"(?:https?://|www\.)[^\s,;)]+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|info|nl|eu|de|be|fr|uk)"
                     r"\b(?:/[^\s,;)]*)?", re.IGNORECASE)


@dataclass
class AnswerEvidence:
    """What the page shows beside one answer."""

    verdict: Verdict | None = None
    """Against the test item's reference (None when the question is not from a test set)."""
    answer_rank: int | None = None
    """Rank of the first passage given to the approach that holds the expected answer (None: none did)."""
    passages: int = 0
    """How many passages the approach was given (0: it retrieves nothing)."""
    attribution: str = ""
    """One sentence: retrieval missed, the model missed what it was given, or both worked."""
    invented: list[tuple[str, str]] = field(default_factory=list)
    """(cited name, why it is flagged) for each source the answer cites but was not given."""


def find_item(question: str, items: list[TestItem]) -> TestItem | None:
    """The test item asking ``question`` (same words, case and punctuation aside), if any."""
    key = normalise(question)
    return next((i for i in items if normalise(i.question) == key), None)


def known_items(workspace: str) -> list[TestItem]:
    """Test items a Compare question may come from: the sample evaluation set, then the questions of the
    workspace's evaluation runs (the newest run's wording wins)."""
    from . import samples
    from .eval_runs import list_eval_runs

    items = [TestItem(r.get("id", ""), r["question"], r["reference"], r.get("source"), r.get("answerable", True),
                      r.get("updated_reference")) for r in samples.eval_rows()]
    seen = {normalise(i.question) for i in items}
    for run in sorted(list_eval_runs(workspace), key=lambda r: -r.created_at):
        for r in run.results:
            key = normalise(r.question)
            if key and key not in seen and r.reference:
                seen.add(key)
                items.append(TestItem(r.item_id, r.question, r.reference, r.source, r.answerable))
    return items


def test_questions(workspace: str, sample: bool) -> list[str]:
    """Questions to offer on Compare: those of the workspace's evaluation runs (newest run first), then
    the sample evaluation set's when ``sample`` (the workspace works on the sample company)."""
    from . import samples
    from .eval_runs import list_eval_runs

    out, seen = [], set()
    own = [r.question for run in sorted(list_eval_runs(workspace), key=lambda r: -r.created_at) for r in run.results]
    for question in own + ([r["question"] for r in samples.eval_rows()] if sample else []):
        if (key := normalise(question)) and key not in seen:
            seen.add(key)
            out.append(question)
    return out


def current_item(item: TestItem, index: Any) -> tuple[TestItem, str | None]:
    """The item as the indexed documents answer it now, and the old reference when that changed: a test
    item with an ``updated_reference`` whose source document, as indexed, holds the updated answer and
    not the original is judged against the updated one (an answer with the old value is then stale)."""
    import dataclasses

    if not (item.updated_reference and item.source and index is not None):
        return item, None
    if item.source not in {d["name"] for d in index.documents()}:
        return item, None
    text = index.document_text(item.source)
    updated = dataclasses.replace(item, reference=item.updated_reference, updated_reference=None)
    if passage_holds(updated, text) and not passage_holds(item, text):
        return updated, item.reference
    return item, None


def passage_holds(item: TestItem, text: str, doc_name: str | None = None, *,
                  background: frozenset[str] = frozenset()) -> bool:
    """Whether a passage holds the expected answer: every key fact of the reference is in it; for a
    reference without such facts, the passage comes from the expected source document."""
    if not item.answerable:
        return False
    reference = item.reference
    checks = [c for c in judge(text, reference, question=item.question, background=background).facts
              if c.kind != "polarity"]
    if checks:
        return all(c.status == "found" for c in checks)
    return bool(item.source) and doc_name == item.source


#: A line that lists sources in a house format ("Sources: a.md", "Ref: faq.txt"): every name on it is a citation,
#: file extension or not ("Ref: quillfern" names no indexed document).
_RE_SOURCE_LINE = re.compile(r"^\s*(?:sources?|refs?|references?|citations?|docs?|documents?)\s*:\s*(.+)$",
                             re.IGNORECASE | re.MULTILINE)
_NO_SOURCE = {"none", "n/a", "na", "-", "–", "nothing", "no source", "no sources", "not in the documents"}


def cited_sources(answer: str, citations: list[dict[str, Any]]) -> list[str]:
    """Document names the answer cites: file names it writes (a "Sources:" line or in the text), and every
    name on a line that lists sources."""
    listed = [part.strip().strip(".`'\"") for m in _RE_SOURCE_LINE.finditer(answer or "")
              for part in re.split(r"[,;]|\s+and\s+", m.group(1))]
    listed = [n for n in listed if n and n.lower() not in _NO_SOURCE and not _RE_MARK.fullmatch(n)]
    seen: list[str] = []
    for name in _RE_FILE.findall(answer or "") + _RE_WEB.findall(answer or ""):
        name = name.rstrip(".…")
        if name not in seen and not any(name in s for s in seen):
            seen.append(name)
    for name in listed:  # "returns-policy.md (Our return window)" is the file already found
        if name not in seen and not any(s in name or name in s for s in seen):
            seen.append(name)
    return seen


def invented_sources(answer: str, citations: list[dict[str, Any]], indexed: set[str]) -> list[tuple[str, str]]:
    """Sources cited that are not in the index, or that the approach was not given, with why; also [n]
    marks past the number of passages given."""
    given = {c.get("doc_name") for c in citations}
    out = []
    for name in cited_sources(answer, citations):
        if name not in indexed and any(d.startswith(name) for d in indexed):  # an answer cut off mid-name
            continue
        if name not in indexed:
            out.append((name, "not in the index"))
        elif name not in given:
            out.append((name, "in the index, but not among the passages this approach was given"
                              if citations else "this approach was given no passages: cited from memory"))
    for n in sorted({int(m) for m in _RE_MARK.findall(answer_text_marks(answer))}):
        if n < 1 or n > len(citations):
            out.append((f"[{n}]", f"there were {len(citations)} passage(s)" if citations else
                                  "this approach was given no passages"))
    return out


def answer_text_marks(answer: str) -> str:
    """The answer without its "Sources:" line, where [n] marks are citations."""
    return re.sub(r"^\s*Sources:.*$", " ", answer or "", flags=re.MULTILINE)


def answer_evidence(answer: Answer, item: TestItem | None, indexed: set[str], *,
                    background: frozenset[str] = frozenset(), known: frozenset[str] = frozenset(),
                    old_reference: str | None = None) -> AnswerEvidence:
    """The evidence for one stored answer (``item``: the test item it answers, if any; ``old_reference``:
    its answer before the document changed, see ``current_item``)."""
    citations, text = answer.citations, answer.text
    ev = AnswerEvidence(passages=len(citations), invented=invented_sources(text, citations, indexed))
    if item is None:
        return ev
    ev.verdict = judge(text, item.reference, question=item.question, answerable=item.answerable,
                       old_reference=old_reference, background=background, known=known)
    if not citations or not item.answerable:
        return ev
    ev.answer_rank = next((c.get("rank") or i + 1 for i, c in enumerate(citations)
                           if passage_holds(item, c.get("text") or "", c.get("doc_name"), background=background)),
                          None)
    correct = ev.verdict.verdict == "correct"
    if ev.answer_rank is None:
        ev.attribution = (f"Retrieval missed: none of the {len(citations)} passages holds the expected answer"
                          + (", yet the answer is right." if correct else "."))
    elif correct:
        ev.attribution = f"Retrieval found the answer (passage [{ev.answer_rank}]) and the model used it."
    else:
        line = "its Answer line does not" if re.search(r"^\s*Answer:", text, re.MULTILINE) else "the answer does not"
        ev.attribution = (f"The model missed it: passage [{ev.answer_rank}] holds the expected answer, "
                          f"but {line} say it.")
    return ev


__all__ = ["AnswerEvidence", "answer_evidence", "answer_text", "cited_sources", "current_item", "find_item", "invented_sources", "known_items",
           "passage_holds"]
