"""Which approach to ship: a questionnaire and measured evidence, through rules kept as plain data.

Three steps, each one readable on the Decide page (``describe_rules``):

1. **Hard limits veto.** A latency limit, nobody to maintain training, or required citations rule
   out the approaches that break them, with the measured figure or the answer that breaks them.
2. **Rules score.** Each ``Rule`` looks at the answers (and, when an evaluation exists, the
   measurements) and moves the score of one or more approaches with a sentence that says why.
3. **The best remaining approach wins**, ties going to the simpler one. Before its name, the page
   says so when another approach measured clearly more correct answers (``Recommendation.warnings``).

Measured correctness ranks approaches only from ``MIN_QUESTIONS`` answerable questions on; below
that the evidence is reported as not enough yet. Reading and saving a workspace's answers is
``workbench.decision_store``'s; this module touches no files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .costs import APPROACH_NAMES
from .errors import DataError
from .eval_summary import MIN_QUESTIONS
from .records import EvalRun

if TYPE_CHECKING:
    from .pricing import Pricing

APPROACHES = ("prompt", "rag", "finetune", "hybrid")
#: A gap in correct share this large (0.10 = 10 points) is always said before a recommendation.
FAR_BELOW = 0.10
NAMES = APPROACH_NAMES  # one table of approach names, shared with Costs and the memo
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
    questions: dict[str, int] = field(default_factory=dict)
    """approach -> answerable questions behind its correct share."""
    interval: dict[str, tuple[float, float]] = field(default_factory=dict)
    """approach -> Wilson 95% range of its correct share."""
    latency_p95_s: dict[str, float] = field(default_factory=dict)
    """approach -> 95th percentile seconds to a full answer."""
    model_id: str = ""
    """The generator that answered."""
    prompt_mode: str = "base"
    """Which approach of the run stands for "Prompt only": ``prompted`` (format instructions and examples)
    when the run has it, else ``base``."""

    @property
    def empty(self) -> bool:
        return not (self.correct or self.format_ok or self.latency_p50_s)

    def n(self, approach: str) -> int:
        """Answerable questions behind ``approach``'s correct share (read from ``source`` for old callers)."""
        if approach in self.questions:
            return self.questions[approach]
        return _questions(self)

    @property
    def enough(self) -> bool:
        """Whether correctness was measured on enough questions to rank approaches by it."""
        return bool(self.correct) and min(self.n(a) for a in self.correct) >= MIN_QUESTIONS

    @classmethod
    def from_run(cls, run: EvalRun, pricing: "Pricing | None" = None) -> "Evidence":
        from .eval_summary import summarize

        summary = summarize(run, pricing)
        by_approach = {a: MODE_OF[a] for a in APPROACHES}
        if "prompted" in summary:  # the fair prompt-only baseline: told the format, shown examples
            by_approach["prompt"] = "prompted"
        pick = lambda key: {a: summary[m][key] for a, m in by_approach.items()  # noqa: E731
                            if m in summary and summary[m].get(key) is not None}
        summaries = {a: summary[m] for a, m in by_approach.items() if m in summary}
        intervals = {a: tuple(s["correct_answerable_ci"]) for a, s in summaries.items()
                     if s.get("correct_answerable_ci")}
        return cls(correct=pick("correct_answerable"), format_ok=pick("format_ok"),
                   latency_p50_s=pick("latency_p50_s"), latency_p95_s=pick("latency_p95_s"),
                   cost_per_1k=pick("cost_per_1k_usd"), questions=pick("n_answerable"), interval=intervals,
                   model_id=run.model_id, source=f"evaluation run {run.id} ({run.done} questions)",
                   prompt_mode=by_approach["prompt"])


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
    when: str = ""
    """The condition in plain words, for the page that lists the rules."""
    moves: str = ""
    """What it does in plain words, where ``effects`` is worked out from the measurements."""


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
                      "re-indexed (seconds), while an adapter only learns it by retraining on new pairs.",
         when="the knowledge changes daily or weekly"),
    Rule("stable-data", lambda a, e: a.data_changes in {"quarterly", "rarely"}, {"finetune": 1, "hybrid": 1},
         lambda a, e: f"Your knowledge changes {a.data_changes}, so retraining is rare and what a fine-tuned model "
                      "learned stays true for long.", when="the knowledge changes quarterly or more rarely"),
    Rule("citations", lambda a, e: a.citations_required, {"rag": 2, "hybrid": 2},
         lambda a, e: "Answers must cite their sources: RAG and the hybrid retrieve the documents they can point to.",
         when="answers must cite their sources"),
    Rule("format", lambda a, e: a.strict_format, {"finetune": 2, "hybrid": 2, "rag": -1, "prompt": -1},
         lambda a, e: "Answers must follow a fixed format or tone: fine-tuning teaches it from examples, prompts "
                      "alone hold it less reliably.", when="answers must follow a fixed format or tone"),
    Rule("few-examples", lambda a, e: a.labelled_examples < 50, {"finetune": -2, "hybrid": -1},
         lambda a, e: f"You have {a.labelled_examples} labelled examples; fine-tuning usually needs at least 50 "
                      "(a few hundred for knowledge).", when="fewer than 50 labelled examples exist"),
    Rule("many-examples", lambda a, e: a.labelled_examples >= 500, {"finetune": 1, "hybrid": 1},
         lambda a, e: f"You have {a.labelled_examples} labelled examples, enough to fine-tune well.",
         when="500 or more labelled examples exist"),
    Rule("high-volume-stable", lambda a, e: a.queries_per_day >= 50_000 and _stable(a), {"finetune": 2, "rag": -1},
         lambda a, e: f"At {a.queries_per_day:,} queries a day with stable data, a fine-tuned model's short prompts "
                      "(no retrieved text in every request) cost less per query, and retraining is rare.",
         when="traffic is 50,000 queries a day or more and the knowledge changes monthly or more rarely"),
    Rule("low-volume", lambda a, e: a.queries_per_day < 1000 and not a.strict_format, {"prompt": 1, "rag": 1},
         lambda a, e: f"At {a.queries_per_day:,} queries a day, per-query cost matters little: the simplest "
                      "approach that is good enough wins.",
         when="traffic is under 1,000 queries a day and no fixed format is required"),
    # Measurements (only when an evaluation run exists); effects are worked out by _measured_effects.
    Rule("measured-best-quality", lambda a, e: _best(e.correct) is not None,
         {}, lambda a, e: "", measured=True, when="an evaluation measured correctness",
         moves=f"+3 to the approach(es) with the most correct answers, once every approach was measured on at "
               f"least {MIN_QUESTIONS} answerable questions (fewer: reported as not enough evidence, no points)"),
    Rule("measured-format", lambda a, e: a.strict_format and _best(e.format_ok) is not None,
         {}, lambda a, e: "", measured=True, when="a fixed format is required and an evaluation measured it",
         moves="+1 to the approach that followed the format best"),
    Rule("measured-cost", lambda a, e: a.queries_per_day >= 50_000 and bool(e.cost_per_1k) and
         any(v > 0 for v in e.cost_per_1k.values()), {}, lambda a, e: "", measured=True,
         when="traffic is 50,000 queries a day or more and costs were measured",
         moves="+1 to the cheapest approach per query"),
]


@dataclass(frozen=True)
class Veto:
    """A hard limit that rules an approach out, whatever its score."""

    approach: str
    limit: str
    """latency, training or citations."""
    reason: str
    """The sentence shown, with the measured figure or the answer that breaks the limit."""


#: The hard limits in plain words, for the page that lists the rules.
LIMITS = [
    ("latency", "You set a latency limit: an approach whose measured median time to a full answer is over it is "
                "ruled out (measured on this machine; faster hardware changes the figure)."),
    ("training", "Nobody can run and maintain training: fine-tuning and the hybrid are ruled out."),
    ("citations", "Answers must cite their sources: prompt only and fine-tuning are ruled out (they retrieve "
                  "nothing to cite; an adapter's \"Sources:\" line is written from memory)."),
]


def vetoes(answers: Answers, evidence: Evidence | None = None) -> list[Veto]:
    """Approaches the hard limits rule out, each with the figure or answer behind it."""
    evidence = evidence or Evidence()
    out = []
    for k in _slow(answers, evidence):
        p95 = evidence.latency_p95_s.get(k)
        out.append(Veto(k, "latency", f"{NAMES[k]} takes {evidence.latency_p50_s[k]:.1f} s (median"
                                      + (f", p95 {p95:.1f} s" if p95 is not None else "")
                                      + f", measured in {evidence.source}), over your limit of "
                                        f"{answers.latency_limit_s:g} s."))
    if not answers.team_can_train:
        for k in ("finetune", "hybrid"):
            out.append(Veto(k, "training", f"{NAMES[k]} needs an adapter trained and retrained as things change, "
                                           "and you said nobody can run and maintain training."))
    if answers.citations_required:
        for k in ("prompt", "finetune"):
            out.append(Veto(k, "citations", f"{NAMES[k]} retrieves no documents, so it cannot cite its sources, "
                                            "which you said answers must do."))
    return out


def describe_rules() -> list[str]:
    """Every limit and rule in plain words (the page's 'How the advisor decides')."""
    def points(effects: dict[str, int]) -> str:
        return ", ".join(f"{v:+d} {NAMES[k]}" for k, v in sorted(effects.items(), key=lambda kv: -kv[1]))

    out = [f"**Hard limit.** {text}" for _, text in LIMITS]
    out += [f"**If {r.when}:** {r.moves or points(r.effects)}." for r in RULES]
    out.append("**Then** the approach with the most points that no limit ruled out is recommended; a tie goes to "
               "the simpler approach (prompt only, then RAG, fine-tuning, hybrid). If another approach answered at "
               f"least {FAR_BELOW:.0%} more questions correctly, that is said before the recommendation.")
    return out


@dataclass
class Recommendation:
    """The outcome."""

    approach: str | None
    """The recommended approach (one of APPROACHES), or None when the hard limits rule out every one."""
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
    vetoed: list[Veto] = field(default_factory=list)
    """Approaches ruled out by a hard limit, and why."""
    warnings: list[str] = field(default_factory=list)
    """What must be said before the recommendation (another approach measured clearly more correct)."""
    evidence_size: str = ""
    """How much evidence the measured part rests on, in words."""


def _pct_range(e: Evidence, k: str) -> str:
    lo_hi = e.interval.get(k)
    span = f", 95% range {lo_hi[0]:.0%}-{lo_hi[1]:.0%}" if lo_hi else ""
    return f"{e.correct[k]:.0%} of {e.n(k)} answerable questions{span}"


def _measured_effects(rule: Rule, a: Answers, e: Evidence,
                      allowed: tuple[str, ...] = APPROACHES) -> tuple[dict[str, int], str]:
    if rule.id == "measured-best-quality":
        within = {k: v for k, v in e.correct.items() if k in allowed}
        if within and len(within) < len(e.correct) and e.enough:
            # The best measured approach is ruled out by a hard limit: rank the ones left.
            e = dataclasses.replace(e, correct=within)
            top = max(within.values())
            best = [k for k in APPROACHES if k in within and within[k] == top]
            if len(best) == len(within):
                return {}, (f"Measured: the approaches within your limits all answered {top:.0%} correctly "
                            f"({e.source}).")
            return {k: 3 for k in best}, (f"Measured: of the approaches within your limits, "
                                          f"{' and '.join(NAMES[k] for k in best)} answered most questions "
                                          f"correctly ({_pct_range(e, best[0])}; {e.source}).")
        top = max(e.correct.values())
        best = [k for k in APPROACHES if k in e.correct and e.correct[k] == top]
        if not e.enough:
            return {}, ""  # said first, as a warning on the recommendation (see ``recommend``)
        if len(best) == len(e.correct):
            return {}, (f"Measured: every approach answered {top:.0%} correctly ({e.source}): quality does not "
                        "separate them on this test set.")
        names = " and ".join(NAMES[k] for k in best)
        second = max((v for k, v in e.correct.items() if k not in best), default=None)
        overlap = ""
        if second is not None and all(k in e.interval for k in e.correct):
            runner = [k for k, v in e.correct.items() if v == second][0]
            if e.interval[best[0]][0] <= e.interval[runner][1]:
                overlap = (f" The 95% ranges of {NAMES[best[0]]} and {NAMES[runner]} overlap, so the order of "
                           "these two may be chance.")
        return {k: 3 for k in best}, (f"Measured: {names} answered most questions correctly "
                                      f"({_pct_range(e, best[0])}; {e.source}).{overlap}")
    if rule.id == "measured-format":
        top = max(e.format_ok.values())
        best = [k for k in APPROACHES if k in e.format_ok and e.format_ok[k] == top]
        if len(best) == len(e.format_ok):
            return {}, ""
        return {k: 1 for k in best}, (f"Measured: {' and '.join(NAMES[k] for k in best)} followed the answer format "
                                      f"best ({top:.0%} of {_questions(e) or 'the'} questions; format is not "
                                      "correctness).")
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
    """Rule out what breaks a hard limit, score the rest with ``rules``, and pick the best (ties go to the
    simpler approach)."""
    evidence = evidence or Evidence()
    vetoed = vetoes(answers, evidence)
    out = {v.approach for v in vetoed}
    allowed = tuple(k for k in APPROACHES if k not in out)
    scores = {k: 0 for k in APPROACHES}
    applied = []
    for rule in rules if rules is not None else RULES:
        if rule.measured and evidence.empty:
            continue
        if not rule.applies(answers, evidence):
            continue
        effects, reason = (_measured_effects(rule, answers, evidence, allowed) if rule.measured
                           else (rule.effects, rule.reason(answers, evidence)))
        for k, v in effects.items():
            scores[k] += v
        applied.append((rule.id, effects, reason))
    from .strategies import MODE_TABLE

    size = ""
    if not evidence.empty and evidence.correct:
        size = (f"{evidence.source}; correctness per approach on "
                + ", ".join(f"{NAMES[k]} {evidence.n(k)}" for k in APPROACHES if k in evidence.correct)
                + " answerable questions"
                + (f"; {NAMES['prompt']} is the run's {MODE_TABLE[evidence.prompt_mode].label} answers"
                   + (" (the base model told the answer format and shown examples)"
                      if evidence.prompt_mode == "prompted" else " (the base model, no instructions)")
                   if "prompt" in evidence.correct else ""))
    if not allowed:
        return Recommendation(None, scores, [], [], measured=not evidence.empty, applied=applied, vetoed=vetoed,
                              warnings=[], evidence_size=size)
    # Ties go to the simpler approach: prompt < rag < finetune < hybrid.
    best = max(allowed, key=lambda k: (scores[k], -APPROACHES.index(k)))
    reasons = [r for _, eff, r in applied if eff.get(best, 0) > 0]
    counter = [r for _, eff, r in applied if r and (eff.get(best, 0) < 0 or not eff or (
        eff.get(best, 0) == 0 and any(v > 0 for v in eff.values())))]
    tied = [k for k in allowed if k != best and scores[k] == scores[best]]
    if tied and not reasons:
        reasons = [f"No rule favoured it over {' and '.join(NAMES[k] for k in tied)}: they all scored "
                   f"{scores[best]:+d}, and a tie goes to the simplest approach (prompt only, then RAG, "
                   "fine-tuned, hybrid)."]
    elif tied:
        counter.append(f"{' and '.join(NAMES[k] for k in tied)} scored the same ({scores[best]:+d}); the simpler "
                       "approach wins a tie.")
    warnings = []
    if evidence.correct and not evidence.enough:
        n = evidence.n(best) if best in evidence.correct else min(evidence.n(k) for k in evidence.correct)
        warnings.append(f"Not enough evidence yet to rank the approaches by correctness ({n} answerable questions "
                        f"measured; {MIN_QUESTIONS} are needed), so this rests mostly on your answers"
                        + (f"; {NAMES[best]} answered correctly {_pct_range(evidence, best)}." if best in
                           evidence.correct else ".") + " Run a larger evaluation before you decide.")
    if best in evidence.correct:
        better = [k for k in APPROACHES if k in evidence.correct and
                  evidence.correct[k] - evidence.correct[best] >= FAR_BELOW - 1e-9]
        for k in better:
            ruled = next((v for v in vetoed if v.approach == k), None)
            lo, hi = evidence.interval.get(best), evidence.interval.get(k)
            apart = bool(lo and hi and lo[1] < hi[0])
            if ruled:
                why = f", which a hard limit rules out ({ruled.limit})."
            elif scores[k] == scores[best]:
                why = (f", which scored the same on the rules ({scores[k]:+d}); the simpler approach won the tie.")
            else:
                why = f", which scored lower on the rules ({scores[k]:+d} against {scores[best]:+d})."
            warnings.append(f"{NAMES[best]} answered correctly {_pct_range(evidence, best)}, "
                            f"{'far below' if apart else 'below'} {NAMES[k]} ({_pct_range(evidence, k)})" + why
                            + ("" if apart else " Their 95% ranges overlap, so the difference may be chance.")
                            + ("" if evidence.enough else " These counts are too small to be sure."))
    elif not evidence.empty and evidence.correct:
        warnings.append(f"{NAMES[best]} was not measured in {evidence.source}: its correctness is unknown. "
                        "Evaluate it before you ship it.")
    return Recommendation(best, scores, reasons, counter, measured=not evidence.empty, applied=applied,
                          vetoed=vetoed, warnings=warnings, evidence_size=size)
