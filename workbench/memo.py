"""The decision memo: one Markdown and one self-contained HTML file that a stakeholder can read
without the app. It holds the question, the data used, the measured comparison, the cost
projection, the recommendation with its reasons and counter-arguments, and every assumption
(prices with their dates, projection inputs)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from . import costs, models
from .decision import NAMES, Answers, Recommendation
from .pricing import PRICE_COLUMNS, Pricing, row_status
from .records import EvalRun
from .tuning import run_note
from .workshop import short_name

_ANSWER_LABELS = {
    "data_changes": "How often the knowledge changes", "citations_required": "Citations required",
    "strict_format": "Strict format or tone", "latency_limit_s": "Latency limit (s)",
    "queries_per_day": "Queries per day", "labelled_examples": "Labelled examples available",
    "team_can_train": "Team able to run training",
}


_ASSUMPTION_LABELS = {
    "queries_per_day": "Queries per day", "docs_changed_per_month": "Documents changed per month",
    "retrains_per_month": "Retrainings per month", "generator": "Where answers are generated",
    "hardware": "Hardware for local models", "always_on": "Whole machines rented (always on)",
    "embedding_model": "Embedding model", "vector_server": "Hosted Chroma server",
    "reranker": "Hosted reranker", "amortise_months": "Months the first training is spread over",
}


def _plain(v: Any, key: str = "") -> str:
    """A questionnaire answer or an assumption in words: yes/no, no limit, 1,000 (not True, None, 1000.0)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "no limit" if key == "latency_limit_s" else "not set"
    if isinstance(v, float) and v.is_integer():
        return f"{v:,.0f}"
    if isinstance(v, (int, float)):
        return f"{v:,}"
    if key == "generator" and v == "local":
        return "the local model, as measured"
    return str(v)


def _money(v: float | None) -> str:
    if v is None:
        return "unknown"
    return f"${v:,.2f}" if v >= 1 else f"${v:.4f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _sec(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s"


#: What the Markdown memo escapes in every text it shows: names come from uploads and typed fields, and the
#: page renders the memo (a table's "|" is escaped by ``_md_table`` itself).
_MD = r"\\`*_{}\[\]<>#~$"


def _md(text: Any) -> str:
    from .reports import md_inert

    return md_inert(text, _MD)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: _md(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_COMPARISON_HEADER = ["Approach", "Correct", "95% range", "Questions", "Token F1", "Grounded", "Format",
                      "Latency p50", "Latency p95", "Tokens in", "Tokens out"]


def _comparison_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The measured comparison as a header and text rows, for the Markdown and the HTML memo alike."""
    return _COMPARISON_HEADER, [
        [r["approach"], _pct(r["correct"]), r.get("range", "-"), str(r.get("questions", "")), _pct(r["f1"]),
         _pct(r["grounded"]), _pct(r["format_ok"]), _sec(r["latency_p50_s"]), _sec(r["latency_p95_s"]),
         f"{r['tokens_in']:.0f}", f"{r['tokens_out']:.0f}"] for r in rows]


def memo_content(workspace: str, answers: Answers, rec: Recommendation, run: EvalRun | None,
                 measured: costs.Measured, projection: costs.Projection, table: dict[str, Any],
                 result: dict[str, list[costs.Component]], breakeven: list[str],
                 pricing: "Pricing | None" = None) -> dict[str, Any]:
    """Everything the memo says, as plain data (both formats render from it; tests read it)."""
    from .eval_summary import summarize
    from .index import open_index
    from .strategies import LABELS

    index = open_index(workspace)
    docs = index.documents()
    data = [("Workspace", short_name(workspace)),
            ("Documents indexed", f"{len(docs)} ({', '.join(d['name'] for d in docs[:8])}"
                                  f"{', ...' if len(docs) > 8 else ''})" if docs else "none")]
    if measured.adapter:
        data.append(("Adapter", f"{measured.adapter} (training measured at {measured.training_s:.0f} s)"
                     if measured.training_s else measured.adapter))
    comparison = []
    if run is not None:
        summary = summarize(run, pricing)
        data.append(("Evaluation", f"run {run.id}: {run.done} questions from {run.testset['name']}, "
                                   f"model {run.model_id}"))
        data.append(("Model", models.model_note(run.model_id)[0].replace("`", "")))
        rag_note = run_note(workspace, run.config)
        if rag_note:
            data.append(("RAG passages", rag_note[1]))
        for mode, s in summary.items():
            ci = s.get("correct_answerable_ci")
            comparison.append({"approach": LABELS.get(mode, mode), "correct": s.get("correct_answerable"),
                               "range": f"{ci[0]:.0%}-{ci[1]:.0%}" if ci else "-",
                               "questions": s.get("n_answerable"), "f1": s.get("f1"),
                               "grounded": s.get("grounded"), "format_ok": s.get("format_ok"),
                               "latency_p50_s": s.get("latency_p50_s"), "latency_p95_s": s.get("latency_p95_s"),
                               "tokens_in": s["tokens_in_per_1k"] / 1000, "tokens_out": s["tokens_out_per_1k"] / 1000})
    else:
        data.append(("Evaluation", "none yet: the recommendation rests on the questionnaire alone"))
    assumptions = [(_ASSUMPTION_LABELS.get(k, k.replace("_", " ")),
                    "derived from the change rate" if k == "retrains_per_month" and v is None else _plain(v, k))
                   for k, v in projection.to_dict().items()]
    assumptions.append(("retrainings per month used", f"{projection.retrains:g}"
                        + (" (derived: one per change, at most daily)" if projection.retrains_per_month is None
                           else " (set)")))
    assumptions.append(("usage per query", measured.source))
    prices = []
    for category, (title, key, columns) in PRICE_COLUMNS.items():
        for row in table.get(category, []):
            values = ", ".join(f"{h} {'unknown' if row.get(c) is None else (f'${row[c]:g}' if u == '$' else f'{row[c]:g}{u}')}"
                               for c, (h, u, _) in columns.items())
            prices.append([title, row[key], values, row.get("as_of", "-"), row.get("source", ""),
                           row_status(category, row)])
    return {
        "title": f"Decision memo: which approach to ship ({short_name(workspace)})",
        "question": "Which approach should we ship for answering questions over our documents: prompt only, "
                    "RAG, fine-tuning, or a hybrid, and what will it cost per month?",
        "answers": [(label, _plain(asdict(answers)[k], k)) for k, label in _ANSWER_LABELS.items()],
        "data": data, "comparison": comparison,
        "projection": costs.projection_rows(result),
        "projection_how": {a: [(c.name, c.how) for c in comps] for a, comps in result.items()},
        "breakeven": breakeven,
        "recommendation": NAMES[rec.approach] if rec.approach else "None: every approach breaks a hard limit",
        "approach": rec.approach, "measured": rec.measured, "reasons": rec.reasons, "counter": rec.counter,
        "scores": rec.scores, "vetoed": [v.reason for v in rec.vetoed], "warnings": rec.warnings,
        "evidence_size": rec.evidence_size,
        "assumptions": assumptions, "prices": prices, "generated": time.strftime("%Y-%m-%d %H:%M"),
    }


def memo_markdown(c: dict[str, Any]) -> str:
    names = costs.APPROACH_NAMES
    out = [f"# {_md(c['title'])}", f"_Generated {c['generated']} by RAG-vs-Fine-tune Workbench. Every figure below was "
           "measured in this workspace or follows from the listed prices and inputs._", "",
           "## The question", _md(c["question"]), "", "### What we told the advisor",
           _md_table(["Question", "Answer"], [list(a) for a in c["answers"]]), "",
           "## Recommendation"]
    for w in c.get("warnings", []):  # a blank line between them: consecutive quoted lines make one paragraph
        out += [f"> **Note first:** {_md(w)}", ""]
    out += [f"**{_md(c['recommendation'])}**"
            + ("" if c["measured"] else " (from the questionnaire alone: no evaluation run yet)"), ""]
    if c.get("evidence_size"):
        out += [f"Evidence: {_md(c['evidence_size'])}.", ""]
    if c.get("vetoed"):
        out += ["Ruled out by hard limits:"] + [f"- {_md(v)}" for v in c["vetoed"]] + [""]
    if c["approach"] is not None:
        out += ["Why:"]
        out += [f"- {_md(r)}" for r in c["reasons"]] or ["- (no rule favoured it strongly; it won on a tie)"]
        out += ["", "Against / what to watch:"] + ([f"- {_md(r)}" for r in c["counter"]] or ["- nothing raised"])
    else:
        out += ["Relax a limit, or measure on faster hardware or a remote model, and ask again."]
    out += ["", "Scores: " + ", ".join(f"{names[a]} {s:+d}" for a, s in c["scores"].items()), "",
            "## Data used", _md_table(["", ""], [list(d) for d in c["data"]]), ""]
    if c["comparison"]:
        out += ["## Measured comparison", _md_table(*_comparison_table(c["comparison"])), ""]
    approaches = [a for a in names if a in c["projection"][0]]
    out += ["## Monthly cost projection", _md_table(
        ["Component", *[names[a] for a in approaches]],
        [[r["component"], *[_money(r.get(a)) for a in approaches]] for r in c["projection"]]), "",
        "How each figure was computed:"]
    for a in approaches:
        out.append(f"- **{names[a]}**: " + "; ".join(f"{_md(n)}: {_md(h)}" for n, h in c["projection_how"][a] if h != "not used"))
    out += ["", "### Break-even"] + [f"- {_md(s)}" for s in c["breakeven"]]
    out += ["", "## Assumptions", _md_table(["Input", "Value"], [list(a) for a in c["assumptions"]]), "",
            "### Prices", _md_table(["Kind", "Item", "Price", "As of", "Source", "Status"], c["prices"]), "",
            "Prices change: check the providers' current pages before committing to a budget."]
    return "\n".join(out) + "\n"


def memo_html(c: dict[str, Any], figures: list[Any]) -> str:
    """The same content as HTML, with the charts (plotly embedded once, works offline)."""
    from .reports import esc, figures_html, page

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    names = costs.APPROACH_NAMES
    approaches = [a for a in names if a in c["projection"][0]]
    li = lambda items: "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"  # noqa: E731
    sections = [
        "<h2>The question</h2>", f"<p>{esc(c['question'])}</p>",
        table(["Question", "Answer"], [list(a) for a in c["answers"]]),
        "<h2>Recommendation</h2>",
        *[f"<p><strong>Note first:</strong> {esc(w)}</p>" for w in c.get("warnings", [])],
        f"<p style=\"font-size:1.3em\"><strong>{esc(c['recommendation'])}</strong>"
        + ("" if c["measured"] else " <em>(from the questionnaire alone: no evaluation run yet)</em>") + "</p>",
        f"<p>Evidence: {esc(c['evidence_size'])}.</p>" if c.get("evidence_size") else "",
        *(["<h3>Ruled out by hard limits</h3>", li(c["vetoed"])] if c.get("vetoed") else []),
        *(["<h3>Why</h3>", li(c["reasons"] or ["No rule favoured it strongly; it won on a tie."]),
           "<h3>Against / what to watch</h3>", li(c["counter"] or ["Nothing raised."])] if c["approach"] is not None
          else ["<p>Relax a limit, or measure on faster hardware or a remote model, and ask again.</p>"]),
        "<h2>Data used</h2>", table(["", ""], [list(d) for d in c["data"]]),
    ]
    if c["comparison"]:
        sections += ["<h2>Measured comparison</h2>", table(*_comparison_table(c["comparison"]))]
    sections += [
        "<h2>Monthly cost projection</h2>",
        table(["Component", *[names[a] for a in approaches]],
              [[r["component"], *[_money(r.get(a)) for a in approaches]] for r in c["projection"]]),
        "<h3>Break-even</h3>", li(c["breakeven"]),
        "<h2>Charts</h2>", figures_html(figures),
        "<h2>Assumptions</h2>", table(["Input", "Value"], [list(a) for a in c["assumptions"]]),
        "<h3>Prices</h3>", table(["Kind", "Item", "Price", "As of", "Source", "Status"], c["prices"]),
        "<p class=\"meta\">Prices change: check the providers' current pages before committing to a budget.</p>",
    ]
    return page(c["title"], "Every figure was measured in this workspace or follows from the listed prices", sections)
