"""Pure plotly figure builders from records. No Streamlit here: pages pass the figures to
``st.plotly_chart``. Every chart has a title and axis titles with units."""

from __future__ import annotations

from typing import Any

from .records import CACHE_STAGE, STAGES, Answer, EvalResult, StageTiming

#: One colour per approach, the same in every chart (Okabe-Ito, colour-blind safe).
MODE_COLOURS = {"base": "#999999", "rag": "#0072B2", "finetuned": "#E69F00", "hybrid": "#009E73",
                "stuffed": "#CC79A7"}
STAGE_COLOUR = "#0072B2"


def stage_timings_chart(timings: list[StageTiming], title: str = "Time per stage") -> Any:
    """Horizontal bars, one per stage, in pipeline order (first at the top), in milliseconds."""
    import plotly.graph_objects as go

    stages = [t.stage.replace("_", " ") for t in timings]
    ms = [t.seconds * 1000 for t in timings]
    fig = go.Figure(go.Bar(x=ms, y=stages, orientation="h", marker_color=STAGE_COLOUR,
                           text=[f"{v:.1f} ms" for v in ms], textposition="auto",
                           hovertemplate="%{y}: %{x:.2f} ms<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="Time (ms)", yaxis_title="Stage", height=80 + 36 * len(stages),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    return fig


def loss_chart(history: list[dict[str, float]], title: str = "Training and validation loss") -> Any:
    """Train loss per step and validation loss per evaluation, against the step."""
    import plotly.graph_objects as go

    train = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    fig = go.Figure()
    if train:
        fig.add_trace(go.Scatter(x=[s for s, _ in train], y=[v for _, v in train], mode="lines", name="training loss",
                                 line=dict(color="#0072B2"),
                                 hovertemplate="step %{x}: training loss %{y:.3f}<extra></extra>"))
    if val:
        fig.add_trace(go.Scatter(x=[s for s, _ in val], y=[v for _, v in val], mode="lines+markers",
                                 name="validation loss", line=dict(color="#E69F00", dash="dash"),
                                 hovertemplate="step %{x}: validation loss %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="Optimisation step", yaxis_title="Loss (cross-entropy, nats/token)",
                      height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


#: Stage colours for stacked latency bars (Okabe-Ito order; retrieval stages blue-ish, generation warm),
#: in the order of ``records.STAGES``.
STAGE_COLOURS = dict(zip(STAGES, ("#56B4E9", "#0072B2", "#009E73", "#999999", "#CC79A7", "#F0E442", "#E69F00",
                                  "#D55E00")))


def latency_by_stage_chart(answers: list[Answer], labels: dict[str, str], title: str = "Latency by stage") -> Any:
    """One horizontal bar per answer (approach), stacked by stage, in seconds."""
    import plotly.graph_objects as go

    names = [labels.get(a.mode, a.mode) for a in answers]
    stages = [s for s in STAGE_COLOURS if any(a.timing(s) is not None for a in answers)]
    fig = go.Figure()
    for stage in stages:
        fig.add_trace(go.Bar(
            y=names, x=[a.timing(stage) or 0.0 for a in answers], orientation="h",
            name=stage.replace("_", " "), marker_color=STAGE_COLOURS[stage],
            customdata=[[a.question] for a in answers],
            hovertemplate=f"{stage.replace('_', ' ')}: %{{x:.3f}} s<br>%{{customdata[0]}}<extra>%{{y}}</extra>"))
    fig.update_layout(barmode="stack", title=title, xaxis_title="Time (s)", yaxis_title="Approach",
                      height=max(240, 120 + 40 * len(answers)), margin=dict(l=10, r=10, t=40, b=10),
                      yaxis=dict(autorange="reversed"),
                      # At the side: below the plot, a short chart's legend landed on the axis title.
                      legend=dict(orientation="v", x=1.02, y=1, xanchor="left", yanchor="top"))
    return fig


STAGE_COLOURS[CACHE_STAGE] = "#000000"


def _by_mode(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["mode"], []).append(row)
    return out


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def latency_distribution_chart(rows: list[dict[str, Any]], labels: dict[str, str],
                               title: str = "Latency per answer") -> Any:
    """Every answer's total time as a point, one column per approach, with a box; cache hits are diamonds
    (kept out of the box, so it shows generation)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for mode, items in _by_mode(rows).items():
        colour, name = MODE_COLOURS.get(mode, "#555555"), labels.get(mode, mode)
        generated = [r for r in items if not r["cache_hit"]]
        hits = [r for r in items if r["cache_hit"]]
        hover = "Q%{customdata[0]}: %{customdata[1]}<br>%{y:.2f} s (%{customdata[2]})<extra>" + name + "</extra>"
        if generated:
            fig.add_trace(go.Box(
                y=[r["total_s"] for r in generated], x=[name] * len(generated), name=name, boxpoints="all",
                jitter=0.4, pointpos=0, marker=dict(color=colour, size=8), line=dict(color=colour),
                customdata=[[r["question_no"], _short(r["question"]), "generated"] for r in generated],
                hovertemplate=hover))
        if hits:
            fig.add_trace(go.Scatter(
                y=[r["total_s"] for r in hits], x=[name] * len(hits), name=f"{name} (cache hit)", mode="markers",
                marker=dict(color=colour, size=11, symbol="diamond", line=dict(color="#000000", width=1)),
                customdata=[[r["question_no"], _short(r["question"]), "cache hit"] for r in hits],
                hovertemplate=hover))
    fig.update_layout(title=title, yaxis_title="Time to full answer (s)", xaxis_title="Approach", showlegend=False,
                      height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def cumulative_cost_chart(rows: list[dict[str, Any]], labels: dict[str, str], rate_note: str = "",
                          title: str = "Cumulative cost") -> Any:
    """Running total of each approach's cost, question after question (answers with unknown cost skipped)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for mode, items in _by_mode(rows).items():
        total, xs, ys, hover = 0.0, [], [], []
        for r in items:
            if r["cost_usd"] is None:
                continue
            total += r["cost_usd"]
            xs.append(r["question_no"])
            ys.append(total)
            hover.append([_short(r["question"]), r["cost_usd"]])
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=labels.get(mode, mode),
            line=dict(color=MODE_COLOURS.get(mode, "#555555")), customdata=hover,
            hovertemplate="Q%{x}: %{customdata[0]}<br>this answer $%{customdata[1]:.6f}, total $%{y:.6f}"
                          "<extra>%{fullData.name}</extra>"))
    fig.update_layout(title=title + (f"<br><sup>{rate_note}</sup>" if rate_note else ""), xaxis_title="Question number",
                      yaxis_title="Cumulative cost (US$)", height=340, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", y=-0.3), xaxis=dict(dtick=1))
    top = max((y for trace in fig.data for y in trace.y or ()), default=0.0)
    # Costs never go below zero; when every cost is $0 show a flat line at 0, not a -$1 to $1 axis.
    fig.update_yaxes(range=[0, top * 1.1] if top > 0 else [0, 1], tickformat="$.2g" if top > 0 else "$")
    return fig


def tokens_chart(rows: list[dict[str, Any]], labels: dict[str, str], title: str = "Tokens per answer") -> Any:
    """Tokens read (prompt) and written (answer) per answer, grouped by question, one colour per approach."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for mode, items in _by_mode(rows).items():
        colour = MODE_COLOURS.get(mode, "#555555")
        custom = [[_short(r["question"]), r["tokens_in"], r["tokens_out"],
                   " (cache hit: no model call)" if r["cache_hit"] else ""] for r in items]
        hover = ("Q%{x}: %{customdata[0]}<br>%{customdata[1]} in, %{customdata[2]} out%{customdata[3]}"
                 "<extra>%{fullData.name}</extra>")
        fig.add_trace(go.Bar(x=[r["question_no"] for r in items], y=[r["tokens_in"] for r in items],
                             name=f"{labels.get(mode, mode)} (prompt)",
                             marker=dict(color="white", line=dict(color=colour, width=1.5),
                                         pattern=dict(shape="/", fgcolor=colour, solidity=0.35)),
                             offsetgroup=mode, customdata=custom, hovertemplate=hover))
        fig.add_trace(go.Bar(x=[r["question_no"] for r in items], y=[r["tokens_out"] for r in items],
                             name=f"{labels.get(mode, mode)} (answer)", marker=dict(color=colour),
                             offsetgroup=mode, base=[r["tokens_in"] for r in items], customdata=custom,
                             hovertemplate=hover))
    fig.update_layout(title=title, barmode="group", xaxis_title="Question number",
                      yaxis_title="Tokens (hatched: prompt; solid: answer)", height=360,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3),
                      xaxis=dict(dtick=1))
    return fig


def metric_bars_chart(summary: dict[str, dict[str, Any]], metrics: dict[str, str], labels: dict[str, str],
                      title: str = "Quality per approach") -> Any:
    """Grouped bars: one group per metric (share 0-1), one bar per approach."""
    import plotly.graph_objects as go

    names = list(metrics)
    fig = go.Figure()
    for mode, s in summary.items():
        values = [s.get(m) for m in names]
        fig.add_trace(go.Bar(
            x=[metrics[m] for m in names], y=[v if v is not None else 0 for v in values],
            name=labels.get(mode, mode), marker_color=MODE_COLOURS.get(mode, "#555555"),
            customdata=["does not apply" if v is None else f"{v:.2f}" for v in values],
            hovertemplate="%{x}: %{customdata}<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="group", title=title, yaxis_title="Score (0 to 1, higher is better)",
                      xaxis_title="Metric", yaxis=dict(range=[0, 1.05]), height=420,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.35))
    return fig


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats on both axes (lower x, higher y)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


#: Where a point's label may go, in the order tried.
_SIDES = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left", "top left",
          "bottom right")


def _label_sides(points: list[tuple[float, float]], texts: list[str], x_range: tuple[float, float],
                 y_range: tuple[float, float], width_px: float = 340, height_px: float = 300) -> dict[int, str]:
    """A side for each point's label such that no two labels' boxes (estimated at 7 px a character, 16 px
    tall, in the plot's own pixels) overlap each other or another point, where any side allows it. The
    width is that of the narrowest plot area the pages draw these charts in (two side by side on a laptop
    screen): a wider guess let labels run into each other there."""
    sx = width_px / ((x_range[1] - x_range[0]) or 1.0)
    sy = height_px / ((y_range[1] - y_range[0]) or 1.0)
    px = [((x - x_range[0]) * sx, (y - y_range[0]) * sy) for x, y in points]

    def box(i: int, side: str) -> tuple[float, float, float, float]:
        w, h, (x, y) = 7.0 * len(texts[i]), 16.0, px[i]
        vertical, horizontal = side.split()
        left = {"center": x - w / 2, "right": x + 9, "left": x - 9 - w}[horizontal]
        bottom = {"top": y + 9, "bottom": y - 9 - h, "middle": y - h / 2}[vertical]
        return left, bottom, left + w, bottom + h

    def clash(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    placed: list[tuple[float, float, float, float]] = []
    markers = [(x - 7, y - 7, x + 7, y + 7) for x, y in px]
    sides: dict[int, str] = {}
    for i in sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0])):
        for side in _SIDES:
            b = box(i, side)
            if not any(clash(b, p) for p in placed) and not any(clash(b, m) for j, m in enumerate(markers) if j != i):
                break
        else:
            side = _SIDES[len(sides) % 4]
            b = box(i, side)
        sides[i] = side
        placed.append(b)
    return sides


def tradeoff_chart(summary: dict[str, dict[str, Any]], quality: dict[str, float], x_key: str, x_title: str,
                   quality_title: str, labels: dict[str, str], title: str, *, evidence_n: int | None = None,
                   min_n: int = 0) -> Any:
    """Quality against cost or latency, one point per approach; the Pareto front is drawn as a line and
    starred, unless ``evidence_n`` (questions behind the quality figures) is under ``min_n``."""
    import plotly.graph_objects as go

    modes = [m for m in summary if summary[m].get(x_key) is not None and quality.get(m) is not None]
    points = [(summary[m][x_key], quality[m]) for m in modes]
    enough = evidence_n is None or evidence_n >= min_n
    front = pareto_front(points) if enough else []
    if not enough:
        title = f"{title}<br><sup>No front marked: {evidence_n} questions, {min_n} needed</sup>"
    fig = go.Figure()
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=[points[i][0] for i in front], y=[points[i][1] for i in front], mode="lines",
                                 name="Pareto front", line=dict(color="#000000", dash="dot"), hoverinfo="skip"))
    xs = [x for x, _ in points] or [0.0]
    pad = (max(xs) - min(xs)) * 0.25 or max(abs(max(xs)) * 0.25, 0.5)
    texts = [labels.get(mode, mode) + (" ★" if i in front else "") for i, mode in enumerate(modes)]
    sides = _label_sides(points, texts, (min(xs) - pad, max(xs) + pad), (-0.12, 1.15))
    for i, mode in enumerate(modes):
        fig.add_trace(go.Scatter(
            x=[points[i][0]], y=[points[i][1]], mode="markers+text", name=labels.get(mode, mode), cliponaxis=False,
            text=[texts[i]], textposition=sides[i],
            marker=dict(color=MODE_COLOURS.get(mode, "#555555"), size=14,
                        symbol="star" if i in front else "circle"),
            hovertemplate=f"{x_title}: %{{x:.4g}}<br>{quality_title}: %{{y:.2f}}<extra>%{{fullData.name}}</extra>"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=quality_title, height=380,
                      xaxis=dict(range=[min(xs) - pad, max(xs) + pad]),
                      yaxis=dict(range=[-0.12, 1.15]), margin=dict(l=60, r=30, t=50, b=50), showlegend=False)
    return fig


def latency_box_chart(results: list[EvalResult], labels: dict[str, str],
                      title: str = "Latency per answer over the test set") -> Any:
    """A box per approach of every answer's total time."""
    import plotly.graph_objects as go

    fig = go.Figure()
    by_mode: dict[str, list[EvalResult]] = {}
    for r in results:
        by_mode.setdefault(r.mode, []).append(r)
    for mode, items in by_mode.items():
        fig.add_trace(go.Box(
            y=[r.total_s for r in items], name=labels.get(mode, mode),
            marker_color=MODE_COLOURS.get(mode, "#555555"), boxpoints="outliers",
            customdata=[[_short(r.question)] for r in items],
            hovertemplate="%{customdata[0]}<br>%{y:.2f} s<extra>%{x}</extra>"))
    fig.update_layout(title=title, yaxis_title="Time to full answer (s)", xaxis_title="Approach", showlegend=False,
                      height=360, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def training_score_chart(history: list[dict[str, Any]], rag_score: float | None = None, rag_note: str = "",
                         title: str = "Test-set score after each epoch") -> Any:
    """The adapter's share of correct answers on a test slice after each epoch; RAG's score on the same
    questions as a flat reference line."""
    import plotly.graph_objects as go

    points = [(h["epoch"], h["eval_score"]) for h in history if "eval_score" in h]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[e for e, _ in points], y=[v for _, v in points], mode="lines+markers",
                             name="Fine-tuned adapter", line=dict(color=MODE_COLOURS["finetuned"]),
                             hovertemplate="epoch %{x}: %{y:.0%} correct<extra>Fine-tuned</extra>"))
    if rag_score is not None:
        fig.add_hline(y=rag_score, line=dict(color=MODE_COLOURS["rag"], dash="dash"),
                      annotation_text=f"RAG: {rag_score:.0%}" + (f" ({rag_note})" if rag_note else ""),
                      annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="Epoch", yaxis_title="Correct answers (share)",
                      yaxis=dict(range=[-0.05, 1.05], tickformat=".0%"), height=320,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


#: Cost components in stacked bars (Okabe-Ito, distinct from the approach colours' role).
COMPONENT_COLOURS = {"Embedding": "#56B4E9", "Vector database": "#0072B2", "Generation": "#E69F00",
                     "Reranker": "#CC79A7", "Training and retraining": "#D55E00"}
APPROACH_TO_MODE = {"prompt": "base", "rag": "rag", "finetune": "finetuned", "hybrid": "hybrid"}


def cost_stack_chart(result: dict[str, list[Any]], names: dict[str, str],
                     title: str = "Monthly cost by component") -> Any:
    """Stacked bars: one bar per approach, one segment per cost component ($ per month).
    Approaches with an unknown component are annotated 'unknown' instead of drawn short."""
    import plotly.graph_objects as go

    approaches = list(result)
    fig = go.Figure()
    for component, colour in COMPONENT_COLOURS.items():
        values = []
        for a in approaches:
            c = next(c for c in result[a] if c.name == component)
            values.append(c.usd if c.usd is not None else 0.0)
        fig.add_trace(go.Bar(x=[names[a] for a in approaches], y=values, name=component, marker_color=colour,
                             hovertemplate=f"{component}: $%{{y:,.2f}} per month<extra>%{{x}}</extra>"))
    for a in approaches:
        unknown = [c.name for c in result[a] if c.usd is None]
        if unknown:
            # One word a bar, so neighbours never overlap; the parts are in the hover and the table above.
            fig.add_annotation(x=names[a], y=0, text="unknown", hovertext="unknown: " + ", ".join(unknown).lower(),
                               showarrow=False, yshift=14, font=dict(color="#D55E00"))
    fig.update_layout(barmode="stack", title=title, xaxis_title="Approach", yaxis_title="Cost ($ per month)",
                      height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(rangemode="tozero")  # no negative costs on the axis when every bar is 0 or unknown
    return fig


def breakeven_chart(xs: list[float], curves: dict[str, list[float | None]], names: dict[str, str], x_title: str,
                    title: str, marker_x: float | None = None, log_x: bool = True, log_y: bool = True,
                    crossings: list[tuple[float, str]] | None = None) -> Any:
    """Monthly cost of each approach against ``xs``; a dotted line at the user's current value and a
    labelled dashed line at each crossing."""
    from .costs import round_figure
    import math

    import plotly.graph_objects as go

    fig = go.Figure()
    for approach, ys in curves.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=names[approach],
                                 line=dict(color=MODE_COLOURS[APPROACH_TO_MODE[approach]], width=2.5),
                                 hovertemplate=f"{names[approach]}: $%{{y:,.2f}} per month at %{{x:,.3g}}<extra></extra>"))
    for x, text in crossings or []:
        fig.add_vline(x=x, line=dict(color="#555", dash="dash", width=1))
        fig.add_annotation(x=math.log10(x) if log_x else x, y=1.0, yref="paper", text=f"{text} at ~{round_figure(x)}",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11))
    if marker_x is not None and marker_x > 0:
        fig.add_vline(x=marker_x, line=dict(color="#222", dash="dot", width=1.5))
        fig.add_annotation(x=math.log10(marker_x) if log_x else marker_x, y=0.0, yref="paper", text="you",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11))
    fig.update_layout(title=title, xaxis_title=x_title,
                      yaxis_title="Cost ($ per month" + (", log scale)" if log_y else ")"), height=400,
                      margin=dict(l=10, r=10, t=70, b=10),
                      # At the side, the legend never lands on the axis title at any page width.
                      legend=dict(orientation="v", x=1.02, y=1, xanchor="left", yanchor="top"))
    lo, hi = min(xs), max(xs)
    if log_x:
        fig.update_xaxes(type="log", range=[math.log10(lo), math.log10(hi)])
    else:
        fig.update_xaxes(range=[lo, hi])
    fig.update_yaxes(type="log" if log_y else "linear", rangemode="tozero")
    return fig
