"""Training pairs: read the formats people already have, and validate them with line numbers.

Formats: OpenAI chat fine-tuning JSONL (``messages``), Alpaca JSONL (``instruction``/``input``/
``output``), ``prompt``/``completion`` JSONL, and CSV with columns the user maps. Every pair becomes
chat messages for the prompt plus the completion text the model must learn to write.

    pairs, report = read_pairs("pairs.jsonl", data)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DataError

MIN_PAIRS = 10
FORMATS = ("chat", "alpaca", "prompt_completion", "question_answer", "csv")
_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Pair:
    """One training example."""

    messages: tuple[tuple[str, str], ...]
    """The prompt as (role, content) chat messages, ending with the user's turn."""
    completion: str
    """The answer the model must learn to give."""
    line: int
    """1-based line (JSONL) or row (CSV, header = 1) it came from."""

    def prompt_messages(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    @property
    def question(self) -> str:
        return next((c for r, c in reversed(self.messages) if r == "user"), "")

    def to_chat(self) -> dict[str, Any]:
        """OpenAI chat fine-tuning format."""
        return {"messages": self.prompt_messages() + [{"role": "assistant", "content": self.completion}]}


@dataclass
class PairsReport:
    """What reading a training file found."""

    file_name: str
    """The file's name."""
    format: str
    """Detected or chosen format."""
    rows_read: int = 0
    """Non-empty lines or rows read."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason) of rows that could not be used."""
    duplicates: int = 0
    """Rows dropped as exact duplicates of an earlier row."""
    usable: int = 0
    """Pairs kept."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decode(name: str, data: bytes) -> str:
    from .textdata import decode_upload

    return decode_upload(name, data, "training pairs (JSONL or CSV)")


#: Deepest nesting a data line may have (a training pair or a test item is two or three levels deep).
MAX_JSON_DEPTH = 20
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(line: str) -> tuple[Any, str | None]:
    """One JSONL line parsed defensively: (object, None), or (None, what is wrong with it). Hostile lines
    (nesting thousands deep, a 5,000-digit number, an unpaired surrogate escape) become a reason, never
    an exception that would stop the file."""
    depth = 0
    deepest = 0
    in_string = escaped = False
    for ch in line:  # a cheap depth check before the recursive parser sees it
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
            continue
        if ch == '"':
            in_string, escaped = True, False
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return None, f"nested more than {MAX_JSON_DEPTH} levels deep"
        elif ch in "]}":
            depth -= 1
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        return None, f"not usable JSON ({str(exc)[:120]})"
    if _has_surrogate(obj):
        return None, "holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
    return obj, None


def _has_surrogate(obj: Any) -> bool:
    if isinstance(obj, str):
        return bool(_SURROGATE.search(obj))
    if isinstance(obj, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_surrogate(v) for v in obj)
    return False


def csv_rows(name: str, text: str) -> tuple[list[list[str]], str | None]:
    """The rows of a CSV text, or the rows read so far and what stopped the reader (with its line)."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        return rows, f"{name} line {reader.line_num}: {exc} (a field over {csv.field_size_limit():,} characters)"
    return rows, None


def detect_format(obj: dict[str, Any]) -> str | None:
    if "messages" in obj:
        return "chat"
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    if "prompt" in obj and "completion" in obj:
        return "prompt_completion"
    if "question" in obj and "answer" in obj:  # also how the workbench keeps a workspace's latest pairs
        return "question_answer"
    return None


def _pair_from_json(obj: Any, fmt: str, line: int) -> Pair:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if fmt == "chat":
        msgs = obj.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ValueError("expected 'messages' to be a non-empty list")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
                raise ValueError(f"expected message {i + 1} to have a role (system/user/assistant) and text content")
        if msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
            raise ValueError("expected the last message to be a non-empty assistant answer (the completion)")
        if not any(m["role"] == "user" for m in msgs[:-1]):
            raise ValueError("expected a user message before the answer")
        prompt = tuple((m["role"], m["content"]) for m in msgs[:-1])
        return Pair(prompt, msgs[-1]["content"].strip(), line)
    if fmt == "alpaca":
        instruction, extra, output = obj.get("instruction"), obj.get("input") or "", obj.get("output")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("expected a non-empty 'instruction'")
        if not isinstance(output, str) or not output.strip():
            raise ValueError("expected a non-empty 'output' (the completion)")
        user = instruction.strip() + (f"\n\n{extra.strip()}" if isinstance(extra, str) and extra.strip() else "")
        return Pair((("user", user),), output.strip(), line)
    if fmt == "question_answer":
        question, answer, system = obj.get("question"), obj.get("answer"), obj.get("system")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("expected a non-empty 'question'")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError("expected a non-empty 'answer' (the completion)")
        if system is not None and not isinstance(system, str):
            raise ValueError(f"expected 'system' to be text, got {type(system).__name__}")
        head = (("system", system.strip()),) if system and system.strip() else ()
        return Pair(head + (("user", question.strip()),), answer.strip(), line)
    prompt, completion = obj.get("prompt"), obj.get("completion")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("expected a non-empty 'prompt'")
    if not isinstance(completion, str) or not completion.strip():
        raise ValueError("expected a non-empty 'completion'")
    return Pair((("user", prompt.strip()),), completion.strip(), line)


def csv_columns(name: str, data: bytes) -> list[str]:
    """Column names of a CSV file (for the column-mapping widgets)."""
    text = _decode(name, data)
    header = next(csv.reader(io.StringIO(text)), [])
    if not [h for h in header if h.strip()]:
        raise DataError(f"{name}: expected a header row with column names; the first row is empty.")
    return header


def guess_csv_mapping(columns: list[str]) -> dict[str, str | None]:
    lower = {c.lower().strip(): c for c in columns}
    pick = lambda *names: next((lower[n] for n in names if n in lower), None)  # noqa: E731
    return {"prompt": pick("prompt", "question", "instruction", "input", "user"),
            "completion": pick("completion", "answer", "output", "response", "assistant"),
            "system": pick("system", "system_prompt")}


def workspace_pairs_jsonl(pairs: list[Pair]) -> str:
    """The pairs as a workspace keeps them (``training_pairs.jsonl``, one ``{"question", "answer", "system"}``
    per line): the Prompted approach draws its examples and the format check its labels from them."""
    return "".join(json.dumps({"question": p.question, "answer": p.completion,
                               "system": next((c for r, c in p.messages if r == "system"), None)},
                              ensure_ascii=False) + "\n" for p in pairs)


def read_pairs(name: str, data: bytes, *, fmt: str | None = None, mapping: dict[str, str | None] | None = None,
               strict: bool = False) -> tuple[list[Pair], PairsReport]:
    """Read training pairs; bad rows are reported with their line numbers (``strict`` raises instead).

    Refuses (``DataError``) an unreadable file, an unknown format, and fewer than 10 usable pairs.
    """
    text = _decode(name, data)
    is_csv = fmt == "csv" or (fmt is None and name.lower().endswith(".csv"))
    pairs: list[Pair] = []
    report = PairsReport(name, "csv" if is_csv else (fmt or "?"))
    if is_csv:
        rows, stopped = csv_rows(name, text)
        if stopped:
            raise DataError(f"{stopped}; nothing was read past it. Shorten that field and upload again.")
        header = rows[0] if rows else []
        mapping = mapping or guess_csv_mapping(header)
        if not mapping.get("prompt") or not mapping.get("completion"):
            raise DataError(f"{name}: expected columns for the prompt and the completion; found columns "
                            f"{header}. Choose which column is which.")
        missing = [c for c in (mapping["prompt"], mapping["completion"], mapping.get("system")) if c and c not in header]
        if missing:
            raise DataError(f"{name}: expected columns {missing}; the header has {header}.")
        idx = {k: header.index(v) for k, v in mapping.items() if v}
        for row_no, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            report.rows_read += 1
            get = lambda k: row[idx[k]].strip() if k in idx and idx[k] < len(row) else ""  # noqa: E731
            prompt, completion = get("prompt"), get("completion")
            if not prompt or not completion:
                report.rejected.append((row_no, f"expected text in both '{mapping['prompt']}' and "
                                                f"'{mapping['completion']}'; one is empty"))
                continue
            system = get("system")
            msgs = ((("system", system),) if system else ()) + (("user", prompt),)
            pairs.append(Pair(msgs, completion, row_no))
    else:
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            report.rows_read += 1
            obj, problem = json_line(line)
            if problem:
                report.rejected.append((line_no, problem))
                continue
            row_fmt = fmt or (detect_format(obj) if isinstance(obj, dict) else None)
            if row_fmt is None:
                keys = sorted(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
                report.rejected.append((line_no, "expected 'messages', 'instruction'+'output', "
                                                 f"'prompt'+'completion' or 'question'+'answer'; got {keys}"))
                continue
            if report.format == "?":
                report.format = row_fmt
            try:
                pairs.append(_pair_from_json(obj, row_fmt, line_no))
            except ValueError as exc:
                report.rejected.append((line_no, str(exc)))
    if report.rows_read == 0:
        raise DataError(f"{name}: no rows found.")
    seen: set[tuple] = set()
    unique = []
    for pair in pairs:
        key = (pair.messages, pair.completion)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        unique.append(pair)
    report.usable = len(unique)
    if strict and report.rejected:
        line, reason = report.rejected[0]
        raise DataError(f"{name}, line {line}: {reason} ({len(report.rejected)} bad rows in all).")
    from . import limits

    if report.usable > limits.value("WORKBENCH_MAX_PAIRS"):
        raise limits.exceeded("WORKBENCH_MAX_PAIRS", report.usable, name)
    if report.usable < MIN_PAIRS:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in report.rejected[:5])
        more = f"; and {len(report.rejected) - 5} more" if len(report.rejected) > 5 else ""
        detail = f". Rejected: {shown}{more}" if report.rejected else ""
        raise DataError(f"{name}: expected at least {MIN_PAIRS} usable pairs to train on, got {report.usable} "
                        f"({len(report.rejected)} rejected, {report.duplicates} duplicates){detail}.")
    return unique, report


def split_pairs(pairs: list[Pair], val_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """A seeded train/validation split (at least 2 validation pairs when val_fraction > 0)."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = 0 if val_fraction <= 0 else max(2, round(len(pairs) * val_fraction))
    n_val = min(n_val, len(pairs) - MIN_PAIRS // 2)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [pairs[i] for i in train], [pairs[i] for i in val]


def pairs_hash(pairs: list[Pair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps(p.to_chat(), sort_keys=True).encode())
    return h.hexdigest()


def length_stats(lengths: list[int], max_length: int) -> dict[str, float]:
    """Token-length statistics of pairs against the max length."""
    if not lengths:
        return {}
    ordered = sorted(lengths)
    return {"min": ordered[0], "median": statistics.median(ordered), "p95": ordered[int(0.95 * (len(ordered) - 1))],
            "max": ordered[-1], "over_max": sum(1 for n in ordered if n > max_length), "max_length": max_length}
