"""Prompts: every approach's system prompt and user template, editable per workspace, and the
few-shot examples of the Prompted approach.

    prompts = load_prompts("default")              # the workspace's edits over the defaults
    messages = prompts.render("rag", question, context=context_block(passages))

A template names what it needs with placeholders: ``{question}`` (every approach), ``{context}``
(the numbered passages: RAG, hybrid, stuffed), ``{adapter_system}`` (the system prompt the adapter
was trained with) and ``{format}`` (the answer format, derived from the training pairs). The
prompt is part of each run's stored settings and of the semantic-cache key, so an edit never
serves an answer made with another prompt.

The Prompted approach is the "prompt engineering first" baseline: the base model, the format
instructions and the ``k`` training pairs nearest to the question (by embedding) as earlier chat
turns. The pair of the question under test is never among them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .formats import shared_labels

PLACEHOLDERS = ("{question}", "{context}", "{adapter_system}", "{format}")
_NEEDS_CONTEXT = {"rag", "hybrid", "stuffed"}  # the modes whose MODE_TABLE entry has passages (strategies imports this module)
MAX_PROMPT_CHARS = 4000
DEFAULT_EXAMPLES = 3


@dataclass(frozen=True)
class PromptTemplate:
    """How one approach builds its chat messages."""

    system: str
    """The system message ({adapter_system} and {format} are filled in; empty: no system message)."""
    user: str
    """The user message: must contain {question}, and {context} for approaches that read passages."""


DEFAULTS: dict[str, PromptTemplate] = {
    "base": PromptTemplate(
        "You are a helpful customer support assistant. Answer the customer's question briefly. "
        "If you do not know the answer, say that you don't know.", "{question}"),
    "prompted": PromptTemplate(
        "{adapter_system}\n{format}\nIf you do not know the answer, say that you don't know.", "{question}"),
    "rag": PromptTemplate(
        "You are a customer support assistant. Answer the question using only the numbered context passages. "
        "Cite the passages you used like [1]. If the passages do not contain the answer, say that you don't know.",
        "Context:\n{context}\n\nQuestion: {question}"),
    "finetuned": PromptTemplate("{adapter_system}", "{question}"),
    "hybrid": PromptTemplate("{adapter_system}", "Context:\n{context}\n\nQuestion: {question}"),
    "stuffed": PromptTemplate(
        "You are a customer support assistant. Answer the question using only the numbered context passages. "
        "Cite the passages you used like [1]. If the passages do not contain the answer, say that you don't know.",
        "Context:\n{context}\n\nQuestion: {question}"),
}


def validate_template(mode: str, template: PromptTemplate) -> PromptTemplate:
    """Refuse a template its approach cannot use ("Expected ..., got ...")."""
    if mode not in DEFAULTS:
        raise ConfigError(f"Unknown approach {mode!r}. Known approaches: {', '.join(DEFAULTS)}.")
    for name, text in (("system prompt", template.system), ("user template", template.user)):
        if not isinstance(text, str):
            raise ConfigError(f"Expected the {mode} {name} to be text, got {type(text).__name__}.")
        if len(text) > MAX_PROMPT_CHARS:
            raise ConfigError(f"Expected the {mode} {name} to hold at most {MAX_PROMPT_CHARS:,} characters, got "
                              f"{len(text):,}.")
    if "{question}" not in template.user:
        raise ConfigError(f"Expected the {mode} user template to contain {{question}}, got {template.user!r}.")
    if mode in _NEEDS_CONTEXT and "{context}" not in template.user:
        raise ConfigError(f"Expected the {mode} user template to contain {{context}} (the retrieved passages), "
                          f"got {template.user!r}.")
    if mode not in _NEEDS_CONTEXT and "{context}" in template.user + template.system:
        raise ConfigError(f"The {mode} approach is given no passages, so its prompt cannot use {{context}}.")
    return template


@dataclass(frozen=True)
class PromptSet:
    """Every approach's template (defaults where not edited) and the number of few-shot examples."""

    templates: dict[str, PromptTemplate] = field(default_factory=lambda: dict(DEFAULTS))
    """Approach -> template."""
    examples: int = DEFAULT_EXAMPLES
    """Training pairs shown to the Prompted approach (nearest to the question)."""

    def __post_init__(self) -> None:
        if not 0 <= self.examples <= 8:
            raise ConfigError(f"Expected between 0 and 8 few-shot examples, got {self.examples}.")
        for mode, template in self.templates.items():
            validate_template(mode, template)

    def template(self, mode: str) -> PromptTemplate:
        return self.templates.get(mode, DEFAULTS[mode])

    def edited(self) -> list[str]:
        """Approaches whose template differs from the default."""
        return [m for m in DEFAULTS if self.template(m) != DEFAULTS[m]]

    def render(self, mode: str, question: str, *, context: str = "", adapter_system: str | None = None,
               format_text: str = "", examples: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
        """The chat messages of ``mode``: system, the few-shot turns (Prompted), then the user turn."""
        template = self.template(mode)
        values = {"{question}": question, "{context}": context, "{adapter_system}": adapter_system or "",
                  "{format}": format_text}
        system = _fill(template.system, values).strip()
        system = re.sub(r"\n{3,}", "\n\n", system)
        messages = [{"role": "system", "content": system}] if system else []
        for ex in examples or []:
            messages += [{"role": "user", "content": _fill(template.user, values | {"{question}": ex["question"]})},
                         {"role": "assistant", "content": ex["answer"]}]
        return messages + [{"role": "user", "content": _fill(template.user, values)}]

    def signature(self, mode: str) -> str:
        """Changes with the template of ``mode`` (and, for Prompted, the number of examples)."""
        t = self.template(mode)
        key = [t.system, t.user] + ([self.examples] if mode == "prompted" else [])
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"templates": {m: asdict(t) for m, t in self.templates.items()}, "examples": self.examples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PromptSet":
        if not isinstance(data, dict):
            raise ConfigError(f"Expected a prompt settings object, got {type(data).__name__}.")
        templates = dict(DEFAULTS)
        for mode, t in (data.get("templates") or {}).items():
            if not isinstance(t, dict):
                raise ConfigError(f"Expected the {mode} template to be an object with 'system' and 'user', got {t!r}.")
            templates[mode] = PromptTemplate(str(t.get("system", "")), str(t.get("user", "")))
        return cls(templates, int(data.get("examples", DEFAULT_EXAMPLES)))


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _path(workspace: str) -> Path:
    from . import paths

    return paths.workspace_dir(workspace) / "prompts.json"


def load_prompts(workspace: str) -> PromptSet:
    """The workspace's prompts: its saved edits over the defaults (a damaged file falls back to the
    defaults and is logged, never fatal)."""
    import logging

    from .store import read_json

    try:
        data = read_json(_path(workspace), None)
        return PromptSet.from_dict(data) if data else PromptSet()
    except (ConfigError, ValueError, TypeError) as exc:
        logging.getLogger("workbench.prompts").warning("Ignoring damaged prompt settings of %s: %s", workspace, exc)
        return PromptSet()


def save_prompts(workspace: str, prompts: PromptSet) -> None:
    from .store import atomic_write_json

    atomic_write_json(_path(workspace), prompts.to_dict())


def reset_prompts(workspace: str, mode: str | None = None) -> PromptSet:
    """Back to the default for ``mode`` (or every approach); returns the new set."""
    current = load_prompts(workspace)
    templates = dict(DEFAULTS) if mode is None else {**current.templates, mode: DEFAULTS[mode]}
    prompts = PromptSet(templates, current.examples)
    save_prompts(workspace, prompts)
    return prompts


# -- the Prompted approach's examples -------------------------------------------------------------------------
def format_instructions(answers: list[str]) -> str:
    """Format instructions read from example answers: the line labels most of them share, in order
    (e.g. "Summary:", "Answer:", "Sources:"); empty when they share none."""
    shape = shared_labels(answers)
    if not shape:
        return ""
    lines = "\n".join(f"{label}: ..." for label in shape)
    return f"Answer in exactly {len(shape)} lines, in this order, like the examples:\n{lines}"


@dataclass
class ExamplePool:
    """Training pairs that the Prompted approach draws its few-shot examples from."""

    pairs: list[dict[str, str]]
    """(question, answer) pairs."""
    embed: Any
    """``embed(texts) -> unit vectors``."""
    origin: str = ""
    """Where the pairs came from (for the run's settings)."""
    system: str | None = None
    """The system prompt the pairs were written with."""
    vectors: list[Any] | None = None

    def __post_init__(self) -> None:
        self.format_text = format_instructions([p["answer"] for p in self.pairs])
        self.digest = hashlib.sha256(json.dumps(self.pairs, sort_keys=True).encode()).hexdigest()[:12]

    def select(self, question: str, k: int) -> list[dict[str, str]]:
        """The ``k`` pairs nearest to ``question``, nearest last (closest to the question in the prompt);
        a pair asking the same question (same words, or embedding similarity >= 0.97) is never chosen."""
        if k <= 0 or not self.pairs:
            return []
        if self.vectors is None:
            self.vectors = list(self.embed([p["question"] for p in self.pairs]))
        q = self.embed([question])[0]
        norm = _normalise(question)
        scored = []
        for pair, v in zip(self.pairs, self.vectors):
            sim = float(sum(a * b for a, b in zip(q, v)))
            if sim >= 0.97 or _normalise(pair["question"]) == norm:
                continue
            scored.append((sim, pair))
        scored.sort(key=lambda s: s[0], reverse=True)
        return [p for _, p in reversed(scored[:k])]


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def example_pool(workspace: str, adapter: str | None, embed: Any) -> ExamplePool | None:
    """The pairs of the chosen adapter (what it learned from), else the workspace's latest training pairs;
    None when there are none."""
    from . import paths

    candidates = ([Path(adapter) / "training_pairs.jsonl"] if adapter else []) + \
        [paths.workspace_dir(workspace) / "training_pairs.jsonl"]
    for path in candidates:
        if path.exists():
            pairs, systems = [], Counter()
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    pairs.append({"question": rec["question"], "answer": rec["answer"]})
                    systems[rec.get("system")] += 1
            system = systems.most_common(1)[0][0] if systems else None
            if system is None and adapter:
                from .store import read_json

                system = (read_json(Path(adapter) / "workbench-adapter.json", {}) or {}).get("system_prompt")
            if pairs:
                return ExamplePool(pairs, embed, origin=str(path), system=system)
    return None
