"""Evaluation: a test set through every approach, with metrics computed offline.

Test sets are JSONL or CSV rows with ``question``, ``reference`` and optional ``source`` (the
document expected to hold the answer), ``answerable`` (false when the documents cannot answer)
and ``updated_reference`` (the answer after the knowledge-update experiment's new document).

Metrics per answer (all offline, each a plain function tested on hand-made cases):

- ``f1`` / ``exact``: token F1 and exact match against the reference, SQuAD-style normalisation
  (lower case, no punctuation or articles), on the answer's core: the ``Answer:`` line when the
  answer uses the trained format, else the whole text.
- ``similarity``: cosine similarity of the answer core and the reference (the embedder).
- ``grounded``: share of answer sentences supported by one retrieved chunk (most of the
  sentence's content words appear in it, or its embedding is close to one of its sentences).
- ``retrieved`` / ``cited``: the expected source was among the retrieved chunks / is named or
  cited ([n]) in the answer.
- ``format_ok``: the trained format check.
- ``refused`` and ``refusal_ok``: the answer says it does not know; correct when it should
  (unanswerable) and wrong when it should not.
- provenance: similarity of the answer to its nearest training pair and to its nearest
  retrieved chunk, so an answer from memory shows as closer to the training data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import string
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DataError
from .pairs import csv_rows, json_line

MAX_QUESTIONS = 2000
MAX_FIELD_CHARS = 4000
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


# -- test sets ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestItem:
    """One test question."""

    __test__ = False  # not a pytest class

    id: str
    """Stable id (from the file, else the line number)."""
    question: str
    """What is asked."""
    reference: str
    """The right answer (for unanswerable questions: what a good refusal says)."""
    source: str | None = None
    """The document expected to hold the answer."""
    answerable: bool = True
    """False when the documents cannot answer; the right behaviour is to say so."""
    updated_reference: str | None = None
    """The right answer once the updated document replaces the old one."""
    line: int = 0
    """Line in the uploaded file (1-based; CSV counts the header as line 1)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TestSetReport:
    """What reading a test set found."""

    __test__ = False

    name: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    """One line per bad row: where and why."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{where}: expected 'answerable' to be true or false, got {value!r}")


def _item(obj: dict[str, Any], line: int, where: str) -> TestItem:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected an object with 'question' and 'reference', got {type(obj).__name__}")
    question = obj.get("question")
    reference = obj.get("reference", obj.get("answer"))
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: expected a non-empty 'question' text, got {question!r}")
    if not isinstance(reference, str) or not reference.strip():
        raise DataError(f"{where}: expected a non-empty 'reference' answer text, got {reference!r}")
    for key in ("question", "reference"):
        if len(obj[key] if key in obj else reference) > MAX_FIELD_CHARS:
            raise DataError(f"{where}: '{key}' is longer than {MAX_FIELD_CHARS} characters")
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        raise DataError(f"{where}: expected 'source' to be a document name or empty, got {source!r}")
    updated = obj.get("updated_reference")
    if updated is not None and not isinstance(updated, str):
        raise DataError(f"{where}: expected 'updated_reference' to be a text, got {updated!r}")
    return TestItem(id=str(obj.get("id") or f"line-{line}"), question=question.strip(), reference=reference.strip(),
                    source=(source or "").strip() or None, answerable=_parse_bool(obj.get("answerable"), where),
                    updated_reference=(updated or "").strip() or None, line=line)


def read_testset(name: str, data: bytes) -> tuple[list[TestItem], TestSetReport]:
    """Read a JSONL or CSV test set; bad rows are reported with their line numbers, good rows kept.

    Refuses (``DataError``) a file that is not text, has an unknown extension, no usable rows, or
    more than ``MAX_QUESTIONS`` rows."""
    report = TestSetReport(name)
    from .textdata import decode_upload

    text = decode_upload(name, data, "a test set (JSONL or CSV)")
    lower = name.lower()
    items: list[TestItem] = []
    if lower.endswith((".jsonl", ".json")):
        for n, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{name} line {n}"
            obj, problem = json_line(raw)
            if problem:
                report.problems.append(f"{where}: {problem}")
                continue
            try:
                items.append(_item(obj, n, where))
            except DataError as exc:
                report.problems.append(str(exc))
    elif lower.endswith(".csv"):
        rows, stopped = csv_rows(name, text)
        if stopped:
            raise DataError(f"{stopped}; nothing was read past it. Shorten that field and upload again.")
        reader = csv.DictReader(io.StringIO(text))
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "question" not in columns or not {"reference", "answer"} & set(columns):
            raise DataError(f"{name}: expected a header with 'question' and 'reference' columns, found "
                            f"{', '.join(reader.fieldnames or []) or 'no header'}.")
        for n, row in enumerate(reader, start=2):
            where = f"{name} line {n}"
            clean = {(k or "").strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
            clean = {k: (v if v != "" else None) for k, v in clean.items()}
            try:
                items.append(_item(clean, n, where))
            except DataError as exc:
                report.problems.append(str(exc))
    else:
        raise DataError(f"{name}: expected a .jsonl or .csv test set, got a {name.rsplit('.', 1)[-1]!r} file.")
    report.rows = len(items) + len(report.problems)
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.id in seen:
            report.problems.append(f"{name} line {item.line}: duplicate id {item.id!r} (kept the first)")
            continue
        seen.add(item.id)
        unique.append(item)
    if not unique:
        detail = f" First problem: {report.problems[0]}" if report.problems else ""
        raise DataError(f"{name}: expected at least one usable question, found none.{detail}")
    from . import limits

    if len(unique) > limits.value("WORKBENCH_MAX_QUESTIONS"):
        raise limits.exceeded("WORKBENCH_MAX_QUESTIONS", len(unique), name)
    return unique, report


def testset_hash(items: list[TestItem]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps([i.to_dict() for i in items], sort_keys=True).encode()).hexdigest()[:16]


# -- text metrics ------------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "€£$“”‘’")
_ANSWER_LINE = re.compile(r"^\s*Answer:\s*(.+)$", re.MULTILINE)
STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those you your we our i me my he she they them their do does did have has had can could will would "
    "should may might not no yes so than then there here what which who whom when where why how all any each "
    "about into over under up down out just also only very more most some such".split())

def normalise(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_core(text: str) -> str:
    """The ``Answer:`` line of a formatted answer, else the whole text."""
    match = _ANSWER_LINE.search(text or "")
    return match.group(1).strip() if match else (text or "").strip()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalise(prediction).split(), normalise(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common: dict[str, int] = {}
    for t in ref:
        common[t] = common.get(t, 0) + 1
    overlap = 0
    for t in pred:
        if common.get(t, 0) > 0:
            overlap += 1
            common[t] -= 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> bool:
    return normalise(prediction) == normalise(reference)


def is_refusal(text: str) -> bool:
    """Whether the answer declines (see ``verdicts.is_refusal``: a negative fact is not a refusal)."""
    from .verdicts import is_refusal as declines

    return declines(text)


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text or "")
    return [p.strip() for p in parts if len(p.strip().split()) >= 3]


def content_words(text: str) -> set[str]:
    return {w for w in normalise(text).split() if w not in STOPWORDS and len(w) > 1}


def word_support(sentence: str, chunk: str) -> float:
    """Share of the sentence's content words that appear in the chunk."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(chunk)) / len(words)


def cosine(a: Any, b: Any) -> float:
    dot = float(sum(x * y for x, y in zip(a, b)))
    na = math.sqrt(float(sum(x * x for x in a)))
    nb = math.sqrt(float(sum(y * y for y in b)))
    return dot / (na * nb) if na and nb else 0.0


#: A sentence counts as supported at this share of content words found in one chunk ...
GROUNDED_WORDS = 0.7
#: ... or at this embedding similarity to one of the chunk's sentences.
GROUNDED_SIMILARITY = 0.75


def groundedness(answer: str, chunks: list[str], embed: Any = None) -> float | None:
    """How much of the answer the given passages support (None: nothing to judge, or no passage).

    When the answer states facts (numbers, dates, codes, names), the share of them found in the
    passages: "90 days" is not grounded in a passage that says 30. Otherwise the share of its
    sentences supported by one passage (most content words appear in it, or, with ``embed(texts) ->
    unit vectors``, its embedding is close to one of the passage's sentences)."""
    if not chunks:
        return None
    from .verdicts import facts_supported

    found, total = facts_supported(answer, chunks)
    if total:
        return found / total
    return sentence_groundedness(answer, chunks, embed)


def sentence_groundedness(answer: str, chunks: list[str], embed: Any = None) -> float | None:
    """Share of the answer's sentences supported by one passage (words or embedding similarity)."""
    answer_sentences = sentences(answer_core(answer)) or sentences(answer)
    if not answer_sentences or not chunks:
        return None
    supported = [any(word_support(s, c) >= GROUNDED_WORDS for c in chunks) for s in answer_sentences]
    if embed is not None and not all(supported):
        chunk_sentences = [s for c in chunks for s in sentences(c)] or chunks
        vectors = embed(chunk_sentences)
        for i, s in enumerate(answer_sentences):
            if not supported[i]:
                v = embed([s])[0]
                supported[i] = max(float(sum(a * b for a, b in zip(v, w))) for w in vectors) >= GROUNDED_SIMILARITY
    return sum(supported) / len(supported)


def mentions_source(answer: str, source: str, citations: list[dict[str, Any]]) -> bool:
    """Whether the answer names ``source`` or cites ([n]) a retrieved chunk of it."""
    text = answer or ""
    stem = source.rsplit(".", 1)[0].lower()
    if source.lower() in text.lower() or (len(stem) > 3 and stem in text.lower()):
        return True
    for match in re.finditer(r"\[(\d+)\]", text):
        n = int(match.group(1))
        if 1 <= n <= len(citations) and citations[n - 1].get("doc_name") == source:
            return True
    return False


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..1); None for no values."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    pos = q * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def leakage(test_questions: list[str], train_questions: list[str], embed: Any = None,
            threshold: float = 0.9) -> list[dict[str, Any]]:
    """Test questions that also appear (same normalised text, or embedding similarity >= threshold) in the
    training pairs: scores on them measure memory, not generalisation."""
    train_norm = {normalise(q): q for q in train_questions}
    found = []
    vectors = embed(train_questions) if embed is not None and train_questions else None
    for q in test_questions:
        if normalise(q) in train_norm:
            found.append({"question": q, "training_question": train_norm[normalise(q)], "similarity": 1.0})
            continue
        if vectors is not None:
            v = embed([q])[0]
            sims = [float(sum(a * b for a, b in zip(v, w))) for w in vectors]
            best = max(range(len(sims)), key=sims.__getitem__)
            if sims[best] >= threshold:
                found.append({"question": q, "training_question": train_questions[best],
                              "similarity": round(sims[best], 4)})
    return found


def now() -> float:
    return time.time()
