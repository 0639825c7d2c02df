"""Self-contained HTML reports (evaluation runs; the decision memo builds on the same pieces).

One file, no network: plotly's JavaScript is embedded once, every text is HTML-escaped, so a
report opens in any browser, offline, and shows the same charts the app shows.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

from .pricing import Pricing, default_pricing

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; width: 100%; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td { overflow-wrap: break-word; }
.scroll { overflow-x: auto; max-width: 100%; } .plotly-graph-div { max-width: 100%; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fff4e5; border-left: 4px solid #E69F00; padding: 0.6em 1em; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def md_inert(value: Any, chars: str = r"\\`*_{}\[\]()#+\-.!|<>~:$") -> str:
    """Text from outside (a file name, a typed name) made inert in Markdown: each of ``chars`` escaped, and
    bare web and e-mail addresses, which renderers link even when escaped, kept plain by a zero-width space
    inside "www.", "://" and after "@" (it looks the same)."""
    shown = re.sub(f"([{chars}])", r"\\\1", "" if value is None else str(value))
    shown = re.sub(r"(?i)(www)(\\?\.)", "\\1\u200b\\2", shown)
    return re.sub(r"(\\?:)(/)|(@)", lambda m: (m.group(1) or m.group(3)) + "\u200b" + (m.group(2) or ""), shown)


def fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if kind == "pct":
            return f"{value:.0%}"
        if kind == "usd":
            return f"${value:.4f}"
        if kind == "s":
            return f"{value:.2f} s"
        return f"{value:.3g}" if isinstance(value, float) else str(value)
    return esc(value)


def table_html(rows: list[dict[str, Any]], columns: dict[str, tuple[str, str]]) -> str:
    """``columns``: key -> (header, kind) where kind is '', 'pct', 'usd' or 's'."""
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in columns.values())
    body = []
    for row in rows:
        cells = []
        for key, (_, kind) in columns.items():
            value = row.get(key)
            cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            cells.append(f"<td{cls}>{fmt(value, kind)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def figures_html(figures: list[Any]) -> str:
    """The figures as HTML, plotly.js embedded once (the first figure carries it)."""
    parts = []
    for i, fig in enumerate(figures):
        # On a static page the in-app tight margins clip tick labels and put axis titles over the numbers:
        # give every axis room of its own.
        fig = fig.__class__(fig)
        fig.update_layout(margin=dict(l=80, r=40, t=60, b=80))
        fig.update_xaxes(automargin=True, title_standoff=12)
        fig.update_yaxes(automargin=True, title_standoff=12)
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}))
    return "\n".join(parts)


def page(title: str, subtitle: str, sections: list[str]) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>"
            f"<p class=\"meta\">{esc(subtitle)} · generated {generated} by RAG-vs-Fine-tune Workbench</p>"
            + "\n".join(sections) + "</body></html>")


def evaluation_report(run: dict[str, Any], pricing: "Pricing | None" = None) -> str:
    """A self-contained HTML report of one evaluation run: settings, metrics, charts, every answer."""
    from .charts import latency_box_chart, metric_bars_chart, tradeoff_chart
    from .eval_summary import MIN_QUESTIONS, MIN_UNANSWERABLE, per_question, summarize
    from .models import model_note
    from .strategies import LABELS

    pricing = pricing or default_pricing()
    summary = summarize(run, pricing)
    config = run.config
    rows = [dict(s, correct_range=(f"{s['correct_answerable_ci'][0]:.0%}–{s['correct_answerable_ci'][1]:.0%}"
                                   if s.get("correct_answerable_ci") else None)) for s in summary.values()]
    declines = ({"declined_unanswerable": "Declined unanswerable"}
                if min((s.get("n_unanswerable") or 0) for s in rows) >= MIN_UNANSWERABLE else {})
    correct = {m: s.get("correct_answerable") for m, s in summary.items()}
    evidence = dict(evidence_n=min((s.get("n_answerable") or 0) for s in summary.values()), min_n=MIN_QUESTIONS)
    # As on the Evaluate page: compute time stands in for cost where every local answer costs $0.
    cost_axis = (("machine_s_per_answer", "Machine seconds per answer", "compute")
                 if all(s["cost_per_1k_usd"] == 0 for s in summary.values())
                 else ("cost_per_1k_usd", "Cost per 1,000 queries (US$)", "cost"))
    sections = [
        "<h2>Settings</h2>",
        table_html([{"k": k, "v": v} for k, v in [
            ("Test set", f"{run.testset['name']} ({run.done} of {run.testset['count']} questions, "
                         f"hash {run.testset['hash']}, compared with the {run.testset['reference']})"),
            ("Status", run.status + (f": {run.error}" if run.error else "")),
            ("Model", f"{config['model_id']}: {model_note(config['model_id'])[0].replace('`', '')}"),
            ("Adapter", config.get("adapter") or "none"),
            ("Retrieval", ", ".join(f"{k}={v}" for k, v in config["retrieval"].items())),
            ("Generation", ", ".join(f"{k}={v}" for k, v in config["generation"].items())),
            ("Index", f"{config.get('index_documents', 0)} documents, fingerprint {config.get('index_fingerprint')}"),
            ("Format check", _format_line(config.get("format_check") or {})),
            ("Hardware rate", f"{pricing.rate.label()} (local answers cost their measured seconds)"),
        ]], {"k": ("Setting", ""), "v": ("Value", "")}),
    ]
    if run.leakage:
        sections.append(f"<p class=\"warn\">{len(run.leakage)} test question(s) also appear in the adapter's "
                        "training pairs: the fine-tuned scores on them measure memory.</p>")
    sections += [
        "<h2>Per approach</h2>",
        table_html(rows, {"approach": ("Approach", ""), "correct_answerable": ("Correct", "pct"),
                          "correct_range": ("95% range", ""),
                          "n_answerable": ("Questions", ""), "verdict_partial": ("Partial", "pct"),
                          "verdict_wrong": ("Wrong", "pct"), "verdict_stale": ("Stale", "pct"),
                          "verdict_refused": ("Refused", "pct"), "verdict_unscored": ("Unscored", "pct"),
                          "declined_unanswerable": ("Declined unanswerable", "pct"),
                          "n_unanswerable": ("Unanswerable questions", ""),
                          "grounded": ("Grounded (facts)", "pct"), "cited": ("Source cited", "pct"),
                          "format_ok": ("Format", "pct"), "f1": ("Token F1", "pct"),
                          "latency_p50_s": ("p50", "s"), "latency_p95_s": ("p95", "s"),
                          "cost_per_1k_usd": ("$ per 1k queries", "usd")}),
        "<p class=\"meta\">Verdicts on the questions the documents answer: correct holds every key fact of the "
        "reference (numbers with units, dates, codes, names, a leading yes/no) and contradicts none (the 95% range is a "
        "Wilson interval over that many questions); partial holds "
        "some; wrong contradicts one or holds none; stale gives the value from before a document update; refused "
        "declines. Declined unanswerable: share of the questions the documents cannot answer that the approach "
        "declined. Token F1 is secondary: it scores \"45 days\" as close to \"30 days\". – : does not apply.</p>",
        "<h2>Charts</h2>",
        figures_html([
            metric_bars_chart(summary, {"correct_answerable": "Correct", "grounded": "Grounded (facts)",
                                        "cited": "Source cited", "format_ok": "Format", **declines, "f1": "Token F1"},
                              LABELS),
            *[tradeoff_chart(summary, correct, key, axis, "Correct", LABELS, f"Correct vs {what}", **evidence)
              for key, axis, what in [cost_axis, ("latency_p50_s", "Median latency (s)", "latency")]],
            latency_box_chart(run.results, LABELS),
        ]),
        "<h2>Every question</h2>",
    ]
    modes = config["modes"]
    columns: dict[str, tuple[str, str]] = {"question": ("Question", ""), "reference": ("Reference", "")}
    for m in modes:
        columns[f"{m}_answer"] = (LABELS.get(m, m), "")
        columns[f"{m}_verdict"] = (f"{LABELS.get(m, m)} verdict", "")
        columns[f"{m}_why"] = ("Why", "")
    sections.append(table_html(per_question(run), columns))
    return page("Evaluation report", f"Run {run.id}" + (f" · {run.label}" if run.label else ""), sections)


def _format_line(check: dict[str, Any]) -> str:
    """What "follows the format" meant in a run, and where the check came from."""
    shape = " / ".join(check.get("lines") or []) or check.get("pattern") or "?"
    origin = check.get("origin") or "the sample's format, assumed before formats were read from the training pairs"
    return f"the lines {shape}, one each, in order ({origin})"

