"""How much each approach costs to run: every answer the app produced, priced (``usage_rows``), the
usage measured per approach (``measured_usage``), and the monthly projection with its break-even
points (``project``, ``curve``, ``breakeven_sentences``).

One answer's price comes from ``pricing`` (the workspace's table and hardware rate); this module adds
up measured usage into months. It sits above history, evaluation and training, which it reads.

Longer than 450 lines because the projection, its break-even curves and the sentences that state them
share one set of assumptions; keeping them together keeps the sentences true to the figures.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from .errors import DataError
from .paths import workspace_dir
from .pricing import (DEFAULT_HARDWARE, PROJECTION_FILE, Pricing, find_price, hardware_rate,
                      whatif_cost)
from .records import Answer
from .store import atomic_write_json, read_json

log = logging.getLogger(__name__)


# == Every answer the app produced, priced ============================================================
def _fine_tuned(mode: str | None) -> bool:
    from .strategies import uses_adapter

    return bool(mode) and uses_adapter(mode)


def usage_rows(workspace: str, pricing: Pricing, whatif_model: str | None = None) -> list[dict[str, Any]]:
    """One row per answer from Compare (history) and Evaluate (evaluation runs): measured tokens and
    seconds, what it cost (``pricing``), and what it would cost on ``whatif_model``."""
    from .eval_runs import list_eval_runs
    from .history import list_runs

    answers: list[tuple[str, str, float, Answer]] = []
    for run in list_runs(workspace):
        for a in run.answers:
            answers.append(("Compare", run.question, run.created_at, a))
    for run in list_eval_runs(workspace):
        for r in run.results:
            answers.append((f"Evaluation {run.id}", r.question, run.created_at, r))
    rows = []
    for where, question, at, a in answers:
        cost = pricing.cost(a)
        row = {"where": where, "question": question, "at": at, "mode": a.mode,
               "model": a.model_id, "tokens_in": a.usage.tokens_in,
               "tokens_out": a.usage.tokens_out, "machine_s": a.machine_s,
               "cost_usd": cost.usd, "basis": cost.basis}
        if whatif_model:
            w = whatif_cost(a, whatif_model, pricing.table, fine_tuned=_fine_tuned(a.mode))
            row["whatif_usd"], row["whatif_basis"] = w.usd, w.basis
        rows.append(row)
    return rows


# == Measured usage per approach =======================================================================
MODES_ORDER = ("base", "rag", "finetuned", "hybrid")
CHARS_PER_TOKEN = 4.0  # used only where no tokenizer count exists, and labelled so


@dataclass(frozen=True)
class ModeUsage:
    """What one answer of an approach uses, on average (measured, editable)."""

    tokens_in: float
    tokens_out: float
    machine_s: float
    """Seconds of the measuring machine per answer (batch-shared generation split)."""
    answers: int = 0
    """How many answers the averages come from (0: typed by the user)."""


@dataclass(frozen=True)
class Measured:
    """Usage measured in the workspace, the starting point of a projection."""

    modes: dict[str, ModeUsage]
    source: str
    """Where the figures come from, in words."""
    query_tokens: float = 12.0
    """Tokens of a question (for query embeddings)."""
    documents: int = 0
    doc_tokens: float = 0.0
    """Average tokens of one document (characters / 4: an estimate)."""
    training_s: float | None = None
    """Measured seconds of one training run of the newest adapter."""
    training_tokens: float | None = None
    """Tokens one training run processes (pairs x epochs, from the adapter's record)."""
    adapter: str | None = None
    model_id: str = ""
    """The model that produced the measured answers ('' when none)."""


def measured_usage(workspace: str, run: Any = None) -> Measured:
    """Averages from ``run`` (an evaluation run), else from the newest finished evaluation the advisor reads
    (``eval_runs.decision_runs``: a knowledge-update run's few questions measure only the approaches it
    re-asked), else from the Compare history."""
    from .eval_runs import decision_runs
    from .history import list_runs
    from .index import open_index
    from .training import list_adapters

    modes: dict[str, list[Answer]] = {}
    if run is None:
        run = next(iter(decision_runs(workspace)), None)
    questions: list[str] = []
    if run is not None:
        for r in run.results:
            modes.setdefault(r.mode, []).append(r)
        questions = [r.question for r in run.results]
        source = f"evaluation run {run.id} ({run.done} questions)"
    else:
        runs = list_runs(workspace)
        for run in runs:
            for a in run.answers:
                if not a.cache_hit:
                    modes.setdefault(a.mode, []).append(a)
            questions.append(run.question)
        source = f"Compare history ({len(runs)} questions)" if runs else "nothing measured yet"
    usage = {}
    for mode, rows in modes.items():
        n = len(rows)
        usage[mode] = ModeUsage(sum(r.usage.tokens_in for r in rows) / n, sum(r.usage.tokens_out for r in rows) / n,
                                sum(r.machine_s for r in rows) / n, n)
    index = open_index(workspace)
    docs = index.documents()
    doc_tokens = (sum(d.get("chars", 0) for d in docs) / len(docs) / CHARS_PER_TOKEN) if docs else 0.0
    query_tokens = (sum(len(q) for q in questions) / len(questions) / CHARS_PER_TOKEN) if questions else 12.0
    adapters = [a for a in list_adapters(workspace) if a.wall_s]
    training_s = training_tokens = name = None
    if adapters:
        newest = max(adapters, key=lambda a: a.created_at)
        training_s, name = float(newest.wall_s or 0.0), newest.name
        stats = newest.meta.get("length_stats") or {}
        median = stats.get("median") or 0
        steps, batch = newest.steps or 0, newest.config.get("batch_size", 1)
        # Examples seen (steps x batch) x their median length: close enough for a price.
        training_tokens = float(median * steps * batch) if median and steps else None
    model_id = next((r.model_id for rows in modes.values() for r in rows if r.model_id), "")
    return Measured(usage, source, query_tokens, len(docs), doc_tokens, training_s, training_tokens, name, model_id)


# == Monthly projection ================================================================================
DAYS_PER_MONTH = 30.0
HOURS_PER_MONTH = 730.0
APPROACH_MODES = {"prompt": "base", "rag": "rag", "finetune": "finetuned", "hybrid": "hybrid"}
#: The name of each approach on every page that weighs approaches (Decide, Costs, the memo): one table
#: (``decision.NAMES`` is this one).
APPROACH_NAMES = {"prompt": "Prompt only", "rag": "RAG", "finetune": "Fine-tuned", "hybrid": "Hybrid"}


def _approach_uses(approach: str, what: str) -> bool:
    """Whether an approach (prompt, rag, finetune, hybrid) retrieves or trains: its mode's entry in the mode table."""
    from .strategies import MODE_TABLE

    return getattr(MODE_TABLE[APPROACH_MODES[approach]], what)


def approach_names(measured_modes: Any = ()) -> dict[str, str]:
    """Approach -> its name, the prompt-only one with the mode that measured it as Compare and Evaluate
    name it ("Prompt only (Prompted)" when that mode was measured, else "Prompt only (Base)")."""
    from .strategies import LABELS

    return {a: f"{n} ({LABELS[mode_of(a, measured_modes)]})" if a == "prompt" else n
            for a, n in APPROACH_NAMES.items()}


def mode_of(approach: str, measured_modes: Any) -> str:
    """The evaluated mode behind an approach: prompt-only is the Prompted mode (format and examples in
    the prompt, so its longer prompts are priced) when it was measured, else the bare base model."""
    if approach == "prompt" and "prompted" in measured_modes:
        return "prompted"
    return APPROACH_MODES[approach]
COMPONENTS = ("Embedding", "Vector database", "Generation", "Reranker", "Training and retraining")
#: When the cadence is derived: retrain after each change (so the model is never stale), batched at
#: most daily.
MAX_DERIVED_RETRAINS = 30.0


@dataclass(frozen=True)
class Projection:
    """The inputs of a monthly projection (validated)."""

    queries_per_day: float = 1000.0
    docs_changed_per_month: float = 4.0
    retrains_per_month: float | None = None
    """None: derived from the change rate (one retraining per change, at most daily)."""
    generator: str = "local"
    """'local' (the measured model on the chosen hardware) or an API model from the price table."""
    hardware: str = DEFAULT_HARDWARE
    """A row of the price table's hardware; its $/hour and its speed-up over the measuring machine price
    local answers and training."""
    always_on: bool = False
    """Local serving rents whole machines for the month (730 h each) instead of paying per second used."""
    embedding_model: str = "local:all-minilm-l6-v2"
    vector_server: bool = False
    """False: the embedded Chroma index inside the app's process (what the workbench runs; no server to
    pay for). True: a hosted Chroma server, priced from the table's 'vector database' row."""
    reranker: bool = False
    amortise_months: float = 12.0
    """The first training is spread over this many months."""

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.queries_per_day <= 1e9, "queries per day", "0 to 1,000,000,000", self.queries_per_day),
            (0 <= self.docs_changed_per_month <= 1e6, "documents changed per month", "0 to 1,000,000",
             self.docs_changed_per_month),
            (self.retrains_per_month is None or 0 <= self.retrains_per_month <= 744, "retrainings per month",
             "0 to 744 (hourly)", self.retrains_per_month),
            (1 <= self.amortise_months <= 120, "months to amortise the first training", "1 to 120",
             self.amortise_months),
        ]
        for ok, what, expected, got in checks:
            if not ok:
                raise DataError(f"Expected {what} between {expected}, got {got:g}.")

    @property
    def retrains(self) -> float:
        if self.retrains_per_month is not None:
            return self.retrains_per_month
        return min(self.docs_changed_per_month, MAX_DERIVED_RETRAINS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Component:
    name: str
    usd: float | None
    """$ per month; None when a price it needs is unknown."""
    how: str
    """The arithmetic, in words."""


def _per_training(measured: Measured, p: Projection, table: dict[str, Any]) -> tuple[float | None, str]:
    if p.generator != "local":
        row = find_price(table, "api", p.generator)
        price = row.get("training_per_m") if row else None
        if price is None:
            return None, f"no fine-tuning price known for {p.generator}"
        if not measured.training_tokens:
            return None, "no training measured yet (train an adapter)"
        return (measured.training_tokens * price / 1e6,
                f"{measured.training_tokens:,.0f} training tokens x ${price:g}/1M")
    if not measured.training_s:
        return None, "no training measured yet (train an adapter)"
    cost = hardware_rate(table, p.hardware).seconds_cost(measured.training_s)
    return cost.usd, cost.basis


def project(measured: Measured, p: Projection, table: dict[str, Any],
            approaches: tuple[str, ...] = tuple(APPROACH_MODES)) -> dict[str, list[Component]]:
    """approach -> its monthly cost, one Component per row of ``COMPONENTS``."""
    queries = p.queries_per_day * DAYS_PER_MONTH
    out: dict[str, list[Component]] = {}
    emb = find_price(table, "embedding", p.embedding_model)
    emb_price = emb.get("per_m") if emb else None
    hosting = {n: (find_price(table, "hosting", n) or {}).get("per_month") for n in ("vector database", "reranker")}
    hw = hardware_rate(table, p.hardware)
    api = find_price(table, "api", p.generator) if p.generator != "local" else None
    for approach in approaches:
        mode = mode_of(approach, measured.modes)
        retrieves, trains = _approach_uses(approach, "retrieves"), _approach_uses(approach, "adapter")
        usage = measured.modes.get(mode)
        rows: list[Component] = []
        # Embedding: every query, plus re-embedding the documents that change.
        if retrieves:
            tokens = queries * measured.query_tokens + p.docs_changed_per_month * measured.doc_tokens
            rows.append(Component("Embedding", None if emb_price is None else tokens * emb_price / 1e6,
                                  f"{tokens:,.0f} tokens x ${emb_price:g}/1M ({p.embedding_model})"
                                  if emb_price is not None else f"no price known for {p.embedding_model}"))
            if p.vector_server:
                vdb = hosting["vector database"]
                rows.append(Component("Vector database", vdb, "a hosted Chroma server, per month" if vdb is not None
                                      else "no price known for vector database hosting"))
            else:
                rows.append(Component("Vector database", 0.0, "the embedded index runs inside the app: no server"))
        else:
            rows += [Component("Embedding", 0.0, "not used"), Component("Vector database", 0.0, "not used")]
        # Generation.
        if usage is None:
            rows.append(Component("Generation", None, f"{APPROACH_NAMES[approach]} not measured yet"))
        elif api is not None:
            cols = ("ft_input_per_m", "ft_output_per_m") if trains else ("input_per_m", "output_per_m")
            pin, pout = api.get(cols[0]), api.get(cols[1])
            if pin is None or pout is None:
                rows.append(Component("Generation", None,
                                      f"no {'fine-tuned ' if trains else ''}price known for {p.generator}"))
            else:
                usd = queries * (usage.tokens_in * pin + usage.tokens_out * pout) / 1e6
                rows.append(Component("Generation", usd, f"{queries:,.0f} queries x ({usage.tokens_in:,.0f} in x "
                                      f"${pin:g} + {usage.tokens_out:,.0f} out x ${pout:g}) / 1M"))
        elif hw.seconds_cost(0.0).usd is None:
            rows.append(Component("Generation", None, hw.seconds_cost(0.0).basis))
        else:
            rate, speedup = hw.per_hour, hw.speedup
            hours = queries * usage.machine_s / speedup / 3600
            if p.always_on:
                machines = max(1, math.ceil(hours / HOURS_PER_MONTH))
                rows.append(Component("Generation", machines * HOURS_PER_MONTH * rate,
                                      f"{machines} x {p.hardware} always on (730 h) x ${rate:g}/h; "
                                      f"{hours:,.1f} h of work"))
            else:
                rows.append(Component("Generation", hours * rate, f"{queries:,.0f} queries x "
                                      f"{usage.machine_s / speedup:.3f} s = {hours:,.2f} h x ${rate:g}/h"))
        # Reranker.
        if retrieves and p.reranker:
            rr = hosting["reranker"]
            rows.append(Component("Reranker", rr, "hosting per month" if rr is not None
                                  else "no price known for reranker hosting"))
        elif retrieves:
            rows.append(Component("Reranker", 0.0, "no hosted reranker (the built-in rescoring, when on, runs inside "
                                                   "the app; its time is in the measured seconds)"))
        else:
            rows.append(Component("Reranker", 0.0, "not used"))
        # Training: the first run amortised, plus every retraining.
        if trains:
            once, how = _per_training(measured, p, table)
            if once is None:
                rows.append(Component("Training and retraining", None, how))
            else:
                runs = 1 / p.amortise_months + p.retrains
                rows.append(Component("Training and retraining", once * runs,
                                      f"({p.retrains:g} retrainings + 1/{p.amortise_months:g} of the first) x "
                                      f"{how} = ${once:.4f} each"))
        else:
            rows.append(Component("Training and retraining", 0.0, "not used"))
        out[approach] = rows
    return out


def total(components: list[Component]) -> float | None:
    """The month's total; None when any component is unknown."""
    if any(c.usd is None for c in components):
        return None
    return sum(c.usd for c in components)


def projection_rows(result: dict[str, list[Component]]) -> list[dict[str, Any]]:
    """The table practitioners publish: one row per component, one column per approach."""
    rows = []
    for name in COMPONENTS:
        row: dict[str, Any] = {"component": name}
        for approach, comps in result.items():
            c = next(c for c in comps if c.name == name)
            row[approach] = c.usd
        rows.append(row)
    rows.append({"component": "Total per month", **{a: total(c) for a, c in result.items()}})
    return rows


# == Break-even =======================================================================================
def curve(measured: Measured, p: Projection, table: dict[str, Any], vary: str, xs: list[float],
          approaches: tuple[str, ...] = tuple(APPROACH_MODES)) -> dict[str, list[float | None]]:
    """approach -> monthly total at each x, ``vary`` being 'queries_per_day' or 'docs_changed_per_month'."""
    out: dict[str, list[float | None]] = {a: [] for a in approaches}
    for x in xs:
        result = project(measured, dataclasses.replace(p, **{vary: x}), table, approaches)
        for a in approaches:
            out[a].append(total(result[a]))
    return out


def crossings(xs: list[float], a: list[float | None], b: list[float | None], log: bool = True) -> list[tuple[float, str]]:
    """Where curve ``a`` and ``b`` cross: (x, 'a' or 'b' = which one is cheaper after the crossing)."""
    found = []
    for i in range(1, len(xs)):
        if None in (a[i - 1], a[i], b[i - 1], b[i]):
            continue
        d0, d1 = a[i - 1] - b[i - 1], a[i] - b[i]
        if d0 == 0 or (d0 > 0) == (d1 > 0) or d1 == 0:
            continue
        t = d0 / (d0 - d1)
        if log and xs[i - 1] > 0:
            x = math.exp(math.log(xs[i - 1]) + t * (math.log(xs[i]) - math.log(xs[i - 1])))
        else:
            x = xs[i - 1] + t * (xs[i] - xs[i - 1])
        found.append((x, "a" if d1 < 0 else "b"))
    return found


def log_space(lo: float, hi: float, n: int = 60) -> list[float]:
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]


def round_figure(x: float) -> str:
    """~350 for 348.2, 12 for 11.5: the precision a crossing point deserves (the sentence and the chart agree)."""
    if x >= 100:
        digits = len(str(int(x))) - 2
        return f"{round(x, -digits):,.0f}"
    return f"{x:.2g}" if x < 10 else f"{x:.0f}"


#: Answers an approach's usage must be averaged over before a cost comparison names the cheaper one
#: (tokens and seconds per answer vary far less between questions than correctness does).
MIN_COST_ANSWERS = 3


def breakeven_sentences(measured: Measured, p: Projection, table: dict[str, Any],
                        a: str = "finetune", b: str = "rag") -> list[str]:
    """The crossing points of approaches ``a`` and ``b`` in words, over traffic and over change rate."""
    out = []
    xs = log_space(1, 1e7)
    c = curve(measured, p, table, "queries_per_day", xs, (a, b))
    na, nb = APPROACH_NAMES[a], APPROACH_NAMES[b]
    n = p.docs_changed_per_month
    change = f"{n:g} document change{'' if n == 1 else 's'} a month"
    if any(v is None for v in c[a] + c[b]):
        out.append(f"{na} vs {nb}: unknown, because a price or a measurement it needs is missing.")
        return out
    few = {APPROACH_NAMES[k]: u.answers for k in (a, b)
           if (u := measured.modes.get(mode_of(k, measured.modes))) is not None and 0 < u.answers < MIN_COST_ANSWERS}
    if few:
        out.append(f"{na} vs {nb}: not enough evidence yet to say which is cheaper ("
                   + ", ".join(f"{k} measured on {n} answer(s)" for k, n in few.items())
                   + f"; at least {MIN_COST_ANSWERS} each are needed).")
        return out
    if p.generator == "local":
        model = f" ({measured.model_id})" if measured.model_id else ""
        where = f"the measured local model{model} on {hardware_rate(table, p.hardware).label()}"
    else:
        where = f"{p.generator} at its listed prices"
    basis = (f"assuming {where}, {change}, "
             + ("a hosted Chroma server" if p.vector_server else "the embedded index (no server)")
             + (" and a hosted reranker" if p.reranker else "")
             + f"; usage per answer from {measured.source}")
    points = crossings(xs, c[a], c[b])
    if not points:
        cheaper = na if c[a][-1] < c[b][-1] else nb
        out.append(f"From 1 to 10,000,000 queries/day, {cheaper} is the cheaper of the two, {basis}.")
    for x, which in points:
        after, before = (na, nb) if which == "a" else (nb, na)
        out.append(f"Above ~{round_figure(x)} queries/day, {after} is cheaper than {before}, {basis}.")
    rates = [0.0] + log_space(0.1, 1000)
    r = curve(measured, p, table, "docs_changed_per_month", rates, (a, b))
    points = crossings(rates, r[a], r[b])
    traffic = f"{p.queries_per_day:,.0f} queries/day"
    for x, which in points:
        after, before = (na, nb) if which == "a" else (nb, na)
        out.append(f"If your documents change more than ~{round_figure(x)} times a month, {after} is cheaper than "
                   f"{before} (at {traffic}).")
    if not points:
        cheaper = na if r[a][-1] < r[b][-1] else nb
        out.append(f"Whatever the change rate (0 to 1,000 a month), {cheaper} is the cheaper of the two at {traffic}.")
    return out


# == Saved inputs (per workspace) ======================================================================
def load_projection(workspace: str) -> tuple[Projection, dict[str, dict[str, float]]]:
    """The saved projection inputs and the user's edits to the measured usage (mode -> field -> value)."""
    data = read_json(workspace_dir(workspace) / PROJECTION_FILE, None) or {}
    try:
        known = {f.name for f in dataclasses.fields(Projection)}
        p = Projection(**{k: v for k, v in (data.get("projection") or {}).items() if k in known})
    except (TypeError, DataError) as exc:
        log.warning("Ignoring damaged projection inputs in workspace %s: %s", workspace, exc)
        p = Projection()
    return p, data.get("overrides", {})


def save_projection(workspace: str, p: Projection, overrides: dict[str, dict[str, float]] | None = None) -> None:
    atomic_write_json(workspace_dir(workspace) / PROJECTION_FILE,
                      {"projection": p.to_dict(), "overrides": overrides or {}, "saved_at": time.time()})


def with_overrides(measured: Measured, overrides: dict[str, dict[str, float]]) -> Measured:
    """``measured`` with the user's typed values in place of the measured averages."""
    modes = dict(measured.modes)
    for mode, values in (overrides or {}).items():
        base = modes.get(mode, ModeUsage(0.0, 0.0, 0.0, 0))
        fields = {k: float(v) for k, v in values.items() if k in {"tokens_in", "tokens_out", "machine_s"}}
        for k, v in fields.items():
            if not 0 <= v <= 1e7:
                raise DataError(f"Expected {k.replace('_', ' ')} for {mode} between 0 and 10,000,000, got {v:g}.")
        modes[mode] = dataclasses.replace(base, **fields, answers=0) if fields else base
    return dataclasses.replace(measured, modes=modes)
