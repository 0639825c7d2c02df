"""Time estimates before training and evaluation come from speeds measured in the workspace, and there is
no estimate when nothing was measured."""

import json

import pytest

from workbench.config import TrainConfig
from workbench.estimates import evaluation_estimate, training_estimate
from workbench.eval_runs import evals_dir
from workbench.training import ADAPTER_META, adapters_dir


def _adapter(name, **meta):
    folder = adapters_dir("e") / name
    folder.mkdir(parents=True)
    (folder / ADAPTER_META).write_text(json.dumps({"name": name, "created_at": 1.0, **meta}))


def test_training_estimate_scales_the_measured_speed(workbench_home):
    assert training_estimate("e", 80, 100, TrainConfig()) is None  # nothing measured: no guess
    # 20 steps of 4 pairs of median 100 tokens took 80 s: 10 ms per token.
    _adapter("plain", steps=20, wall_s=80.0, length_stats={"median": 100}, config={"batch_size": 4, "top_layers": 0}, device="cpu")
    est = training_estimate("e", 80, 100, TrainConfig(epochs=3, batch_size=4, val_fraction=0.1))
    # 72 training pairs -> 18 steps per epoch x 3 epochs x 4 pairs x 100 tokens x 10 ms
    assert est.seconds == pytest.approx(54 * 4 * 100 * 0.01)
    assert "10.0 ms per token" in est.text() and "plain" in est.basis
    # A retrieval-aware training is only estimated from one trained the same way, and on the same model.
    assert training_estimate("e", 80, 100, TrainConfig(context_passages=3, top_layers=8)) is None
    assert training_estimate("e", 80, 100, TrainConfig(), "local:smollm2-135m").basis == est.basis
    assert training_estimate("e", 80, 100, TrainConfig(), "local:gemma3-270m") is None
    # nor from one trained in another precision, or with LoRA dropout on where it is off (42% of a bf16 step)
    assert training_estimate("e", 80, 100, TrainConfig(), precision="fp32").basis == est.basis  # stored: CPU, fp32
    assert training_estimate("e", 80, 100, TrainConfig(), precision="bf16") is None
    assert training_estimate("e", 80, 100, TrainConfig(dropout=0.0)) is None


def test_evaluation_estimate_uses_the_last_runs_wall_time(workbench_home):
    assert evaluation_estimate("e", 50, ["base", "rag"]) is None
    evals_dir("e").mkdir(parents=True, exist_ok=True)
    (evals_dir("e") / "r1.json").write_text(json.dumps({
        "id": "r1", "status": "done", "created_at": 100.0, "finished_at": 160.0, "done": 3,
        "config": {"modes": ["base", "rag", "hybrid", "finetuned"]}, "results": [], "testset": {"name": "x"}}))
    est = evaluation_estimate("e", 50, ["base", "rag"])
    assert est.seconds == pytest.approx(5.0 * 50 * 2) and "5 s per answer in evaluation run r1" in est.text()
    (evals_dir("e") / "r1.json").write_text(json.dumps({
        "id": "r1", "status": "done", "created_at": 100.0, "finished_at": 160.0, "done": 3,
        "config": {"modes": ["base"], "model_id": "local:smollm2-135m"}, "results": [], "testset": {"name": "x"}}))
    assert evaluation_estimate("e", 50, ["base"], "local:smollm2-135m") is not None
    assert evaluation_estimate("e", 50, ["base"], "local:gemma3-270m") is None  # another model, another speed
