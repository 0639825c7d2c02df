"""Which approach to ship: a questionnaire and measured evidence, through rules kept as plain data.

Each ``Rule`` looks at the answers (and, when an evaluation exists, the measurements), and moves
the score of one or more approaches up or down with a sentence that says why. The recommendation
is the approach with the highest score; its reasons are the rules that favoured it, and the
counter-arguments are the rules that went against it or favoured another. Everything is data, so
the rules can be read, tested and changed without touching the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DataError

APPROACHES = ("prompt", "rag", "finetune", "hybrid")
NAMES = {"prompt": "Prompt only (base model)", "rag": "RAG", "finetune": "Fine-tuning", "hybrid": "Hybrid (RAG + fine-tuning)"}
#: Evaluation modes behind each approach.
MODE_OF = {"prompt": "base", "rag": "rag", "finetune": "finetuned", "hybrid": "hybrid"}
CHANGE_RATES = ("daily", "weekly", "monthly", "quarterly", "rarely")


@dataclass(frozen=True)
class Answers:
    """The questionnaire."""

    data_changes: str = "monthly"
    """How often the knowledge changes: daily, weekly, monthly, quarterly or rarely."""
    citations_required: bool = False
    """Answers must show their sources."""
    strict_format: bool = False
    """Answers must follow a fixed format or tone."""
    latency_limit_s: float | None = None
    """Longest acceptable time to a full answer (None: no limit)."""
    queries_per_day: int = 1000
    """Expected traffic."""
    labelled_examples: int = 0
    """Question-answer pairs available for training."""
    team_can_train: bool = True
    """Someone can run and maintain training."""

    def __post_init__(self) -> None:
        if self.data_changes not in CHANGE_RATES:
            raise DataError(f"Expected how often the data changes to be one of {', '.join(CHANGE_RATES)}, "
                            f"got {self.data_changes!r}.")
        if self.latency_limit_s is not None and not 0 < self.latency_limit_s <= 600:
            raise DataError(f"Expected a latency limit between 0 and 600 seconds, got {self.latency_limit_s}.")
        if not 0 <= self.queries_per_day <= 10**9:
            raise DataError(f"Expected queries per day between 0 and 1,000,000,000, got {self.queries_per_day}.")
        if not 0 <= self.labelled_examples <= 10**8:
            raise DataError(f"Expected a number of labelled examples of 0 or more, got {self.labelled_examples}.")


@dataclass(frozen=True)
class Evidence:
    """Measurements per approach from an evaluation run (missing approaches were not measured)."""

    correct: dict[str, float] = field(default_factory=dict)
    """approach -> share of answers correct."""
    format_ok: dict[str, float] = field(default_factory=dict)
    """approach -> share following the trained format."""
    latency_p50_s: dict[str, float] = field(default_factory=dict)
    """approach -> median seconds to a full answer."""
    cost_per_1k: dict[str, float] = field(default_factory=dict)
    """approach -> $ per 1,000 queries (only where known)."""
    source: str = ""
    """Which run, in words."""

    @property
    def empty(self) -> bool:
        return not (self.correct or self.format_ok or self.latency_p50_s)

    @classmethod
    def from_run(cls, run: dict[str, Any], hardware_per_hour: float = 0.0) -> "Evidence":
        from .eval_summary import summarize

        summary = summarize(run, hardware_per_hour)
        by_approach = {a: MODE_OF[a] for a in APPROACHES}
        if "prompted" in summary:  # the fair prompt-only baseline: told the format, shown examples
            by_approach["prompt"] = "prompted"
        pick = lambda key: {a: summary[m][key] for a, m in by_approach.items()  # noqa: E731
                            if m in summary and summary[m].get(key) is not None}
        return cls(correct=pick("correct_answerable"), format_ok=pick("format_ok"),
                   latency_p50_s=pick("latency_p50_s"), cost_per_1k=pick("cost_per_1k_usd"),
                   source=f"evaluation run {run['id']} ({run['done']} questions)")


@dataclass(frozen=True)
class Rule:
    """One piece of the decision: when it applies, how it moves each approach, and why."""

    id: str
    applies: Callable[[Answers, Evidence], bool]
    effects: dict[str, int]
    """approach -> points (positive favours it)."""
    reason: Callable[[Answers, Evidence], str]
    """The sentence shown, tied to an answer or a measurement."""
    measured: bool = False
    """True when the rule rests on a measurement rather than the questionnaire."""


def _frequent(a: Answers) -> bool:
    return a.data_changes in {"daily", "weekly"}


def _stable(a: Answers) -> bool:
    return a.data_changes in {"quarterly", "rarely", "monthly"}


def _best(values: dict[str, float], *, high: bool = True) -> str | None:
    if not values:
        return None
    return (max if high else min)(values, key=values.__getitem__)


def _slow(a: Answers, e: Evidence) -> list[str]:
    if a.latency_limit_s is None:
        return []
    return [k for k, v in e.latency_p50_s.items() if v > a.latency_limit_s]


RULES: list[Rule] = [
    Rule("changes-often", lambda a, e: _frequent(a), {"rag": 3, "hybrid": 1, "finetune": -3},
         lambda a, e: f"Your knowledge changes {a.data_changes}: RAG serves a changed document as soon as it is "
                      "re-indexed (seconds), while an adapter only learns it by retraining on new pairs."),
    Rule("stable-data", lambda a, e: a.data_changes in {"quarterly", "rarely"}, {"finetune": 1, "hybrid": 1},
         lambda a, e: f"Your knowledge changes {a.data_changes}, so retraining is rare and what a fine-tuned model "
                      "learned stays true for long."),
    Rule("citations", lambda a, e: a.citations_required, {"rag": 2, "hybrid": 2, "finetune": -2, "prompt": -2},
         lambda a, e: "Answers must cite their sources: only approaches that retrieve documents can point to them."),
    Rule("format", lambda a, e: a.strict_format, {"finetune": 2, "hybrid": 2, "rag": -1, "prompt": -1},
         lambda a, e: "Answers must follow a fixed format or tone: fine-tuning teaches it from examples, prompts "
                      "alone hold it less reliably."),
    Rule("few-examples", lambda a, e: a.labelled_examples < 50, {"finetune": -2, "hybrid": -1},
         lambda a, e: f"You have {a.labelled_examples} labelled examples; fine-tuning usually needs at least 50 "
                      "(a few hundred for knowledge)."),
    Rule("many-examples", lambda a, e: a.labelled_examples >= 500, {"finetune": 1, "hybrid": 1},
         lambda a, e: f"You have {a.labelled_examples} labelled examples, enough to fine-tune well."),
    Rule("no-training-team", lambda a, e: not a.team_can_train, {"finetune": -3, "hybrid": -3},
         lambda a, e: "Nobody can run and maintain training, and an adapter needs retraining as things change."),
    Rule("high-volume-stable", lambda a, e: a.queries_per_day >= 50_000 and _stable(a), {"finetune": 2, "rag": -1},
         lambda a, e: f"At {a.queries_per_day:,} queries a day with stable data, a fine-tuned model's short prompts "
                      "(no retrieved text in every request) cost less per query, and retraining is rare."),
    Rule("low-volume", lambda a, e: a.queries_per_day < 1000 and not a.strict_format, {"prompt": 1, "rag": 1},
         lambda a, e: f"At {a.queries_per_day:,} queries a day, per-query cost matters little: the simplest "
                      "approach that is good enough wins."),
    # Measurements (only when an evaluation run exists).
    Rule("measured-best-quality", lambda a, e: _best(e.correct) is not None,
         {}, lambda a, e: "", measured=True),  # effects filled in by evaluate(); see below
    Rule("measured-format", lambda a, e: a.strict_format and _best(e.format_ok) is not None,
         {}, lambda a, e: "", measured=True),
    Rule("measured-latency", lambda a, e: bool(_slow(a, e)), {}, lambda a, e: "", measured=True),
    Rule("measured-cost", lambda a, e: a.queries_per_day >= 50_000 and bool(e.cost_per_1k) and
         any(v > 0 for v in e.cost_per_1k.values()), {}, lambda a, e: "", measured=True),
]


@dataclass
class Recommendation:
    """The outcome."""

    approach: str
    """The recommended approach (one of APPROACHES)."""
    scores: dict[str, int]
    """approach -> total points."""
    reasons: list[str]
    """Why: the rules that favoured the recommended approach."""
    counter: list[str]
    """Against: rules that went against it, or favoured another approach."""
    measured: bool
    """Whether measurements took part (False: the questionnaire alone)."""
    applied: list[tuple[str, dict[str, int], str]] = field(default_factory=list)
    """(rule id, effects, reason) of every rule that applied."""


def _measured_effects(rule: Rule, a: Answers, e: Evidence) -> tuple[dict[str, int], str]:
    if rule.id == "measured-best-quality":
        top = max(e.correct.values())
        best = [k for k in APPROACHES if k in e.correct and e.correct[k] == top]
        small = " On so few questions the difference may be chance." if _questions(e) < 20 else ""
        if len(best) == len(e.correct):
            return {}, (f"Measured: every approach answered {top:.0%} correctly ({e.source}): quality does not "
                        "separate them on this test set.")
        names = " and ".join(NAMES[k] for k in best)
        return {k: 2 for k in best}, (f"Measured: {names} answered most questions correctly ({top:.0%}, "
                                      f"{e.source}).{small}")
    if rule.id == "measured-format":
        best = _best(e.format_ok)
        return {best: 1}, f"Measured: {NAMES[best]} followed the format best ({e.format_ok[best]:.0%})."
    if rule.id == "measured-latency":
        slow = _slow(a, e)
        return {k: -3 for k in slow}, ("Measured: " + ", ".join(f"{NAMES[k]} takes {e.latency_p50_s[k]:.1f} s"
                                                                 for k in slow)
                                       + f" (median), over your limit of {a.latency_limit_s:g} s.")
    if rule.id == "measured-cost":
        cheapest = _best({k: v for k, v in e.cost_per_1k.items()}, high=False)
        return {cheapest: 1}, (f"Measured: {NAMES[cheapest]} is the cheapest per query "
                               f"(${e.cost_per_1k[cheapest]:.4f} per 1,000), which matters at your volume.")
    return {}, ""


def _questions(e: Evidence) -> int:
    """Questions behind the evidence, read from its source ('... (N questions)'); 0 when unknown."""
    import re

    m = re.search(r"\((\d+) questions\)", e.source)
    return int(m.group(1)) if m else 0


def recommend(answers: Answers, evidence: Evidence | None = None, rules: list[Rule] | None = None) -> Recommendation:
    """Score every approach with ``rules`` and pick the best (ties go to the simpler approach)."""
    evidence = evidence or Evidence()
    scores = {k: 0 for k in APPROACHES}
    applied = []
    for rule in rules if rules is not None else RULES:
        if rule.measured and evidence.empty:
            continue
        if not rule.applies(answers, evidence):
            continue
        effects, reason = (_measured_effects(rule, answers, evidence) if rule.measured
                           else (rule.effects, rule.reason(answers, evidence)))
        for k, v in effects.items():
            scores[k] += v
        applied.append((rule.id, effects, reason))
    # Ties go to the simpler approach: prompt < rag < finetune < hybrid.
    best = max(APPROACHES, key=lambda k: (scores[k], -APPROACHES.index(k)))
    reasons = [r for _, eff, r in applied if eff.get(best, 0) > 0]
    counter = [r for _, eff, r in applied if r and (eff.get(best, 0) < 0 or not eff or (
        eff.get(best, 0) == 0 and any(v > 0 for v in eff.values())))]
    tied = [k for k in APPROACHES if k != best and scores[k] == scores[best]]
    if tied:
        counter.append(f"{' and '.join(NAMES[k] for k in tied)} scored the same ({scores[best]:+d}); the simpler "
                       "approach wins a tie.")
    return Recommendation(best, scores, reasons, counter, measured=not evidence.empty, applied=applied)


# -- saved answers and the evidence of a workspace ---------------------------------------------------------
ANSWERS_FILE = "decision.json"


def load_answers(workspace: str) -> Answers:
    """The questionnaire as last saved in the workspace (defaults when none, or when the file is damaged)."""
    import logging

    from .paths import workspace_dir
    from .store import read_json

    data = read_json(workspace_dir(workspace) / ANSWERS_FILE, None) or {}
    try:
        return Answers(**data.get("answers", {}))
    except (TypeError, DataError) as exc:
        logging.getLogger(__name__).warning("Ignoring damaged decision answers in %s: %s", workspace, exc)
        return Answers()


def save_answers(workspace: str, answers: Answers) -> None:
    import dataclasses
    import time

    from .paths import workspace_dir
    from .store import atomic_write_json

    atomic_write_json(workspace_dir(workspace) / ANSWERS_FILE,
                      {"answers": dataclasses.asdict(answers), "saved_at": time.time()})


def latest_run(workspace: str) -> dict[str, Any] | None:
    """The newest finished evaluation run of the workspace, if any."""
    from .eval_runs import DONE, list_eval_runs

    runs = [r for r in list_eval_runs(workspace) if r.get("status") == DONE and r.get("results")]
    return max(runs, key=lambda r: r.get("created_at", 0)) if runs else None
