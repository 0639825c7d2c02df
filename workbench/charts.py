"""Pure plotly figure builders from records. No Streamlit here: pages pass the figures to
``st.plotly_chart``. Every chart has a title and axis titles with units."""

from __future__ import annotations

from typing import Any

from .records import StageTiming

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


#: Stage colours for stacked latency bars (Okabe-Ito order; retrieval stages blue-ish, generation warm).
STAGE_COLOURS = {"embed_query": "#56B4E9", "dense_search": "#0072B2", "keyword_search": "#009E73",
                 "fusion": "#999999", "rerank": "#CC79A7", "prompt_build": "#F0E442", "ttft": "#E69F00",
                 "decode": "#D55E00"}


def latency_by_stage_chart(answers: list[Any], labels: dict[str, str], title: str = "Latency by stage") -> Any:
    """One horizontal bar per answer (approach), stacked by stage, in seconds."""
    import plotly.graph_objects as go

    names = [labels.get(a.mode, a.mode) for a in answers]
    stages = [s for s in STAGE_COLOURS if any(a.timing(s) is not None for a in answers)]
    fig = go.Figure()
    for stage in stages:
        fig.add_trace(go.Bar(
            y=names, x=[a.timing(stage) or 0.0 for a in answers], orientation="h", name=stage.replace("_", " "),
            marker_color=STAGE_COLOURS[stage],
            customdata=[[a.question] for a in answers],
            hovertemplate=f"{stage.replace('_', ' ')}: %{{x:.3f}} s<br>%{{customdata[0]}}<extra>%{{y}}</extra>"))
    fig.update_layout(barmode="stack", title=title, xaxis_title="Time (s)", yaxis_title="Approach",
                      height=120 + 40 * len(answers), margin=dict(l=10, r=10, t=40, b=10),
                      yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.35))
    return fig
