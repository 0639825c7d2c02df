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
