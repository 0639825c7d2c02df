"""Each limit, when hit, names itself and how to raise it, and leaves what exists intact."""


import pytest

from workbench import limits, samples
from workbench.errors import ConfigError, DataError


def test_limits_come_from_the_environment_and_are_checked(monkeypatch):
    assert limits.value("WORKBENCH_MAX_DOCUMENTS") == 500
    monkeypatch.setenv("WORKBENCH_MAX_DOCUMENTS", "7")
    assert limits.value("WORKBENCH_MAX_DOCUMENTS") == 7
    assert {r["variable"]: r["source"] for r in limits.table()}["WORKBENCH_MAX_DOCUMENTS"] == "environment"
    monkeypatch.setenv("WORKBENCH_MAX_DOCUMENTS", "many")
    with pytest.raises(ConfigError, match="WORKBENCH_MAX_DOCUMENTS to be a whole number"):
        limits.value("WORKBENCH_MAX_DOCUMENTS")


def test_upload_size_limit(monkeypatch):
    from workbench.documents import parse_uploads

    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "1")
    docs, problems = parse_uploads([("big.md", b"x " * 600_000)])
    assert not docs and "the limit is 1 MB per uploaded file, found 1.1" in problems[0].message
    assert "WORKBENCH_MAX_UPLOAD_MB=" in problems[0].message or "WORKBENCH_MAX_UPLOAD_MB" in problems[0].message


def test_documents_per_workspace_limit_keeps_what_fits(workbench_home, monkeypatch):
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index

    close_all()
    monkeypatch.setenv("WORKBENCH_MAX_DOCUMENTS", "2")
    index = open_index("lim")
    docs, _ = parse_uploads(samples.sample_documents()[:3])
    report = index.add_documents(docs)
    assert len(report.added) == 2 and len(index.documents()) == 2
    (name, message), = report.problems
    assert "the limit is 2 documents per workspace, found 3" in message and "WORKBENCH_MAX_DOCUMENTS=" in message
    close_all()


def test_training_pairs_and_test_set_limits(monkeypatch):
    from workbench.evaluation import read_testset
    from workbench.pairs import read_pairs

    monkeypatch.setenv("WORKBENCH_MAX_PAIRS", "20")
    with pytest.raises(DataError, match="the limit is 20 training pairs per file, found 80") as info:
        read_pairs("pairs.jsonl", (samples.sample_dir() / "training_pairs.jsonl").read_bytes())
    assert "WORKBENCH_MAX_PAIRS=" in info.value.fix
    monkeypatch.setenv("WORKBENCH_MAX_QUESTIONS", "10")
    with pytest.raises(DataError, match="the limit is 10 questions per test set, found 50"):
        read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())


def test_training_steps_limit_stops_before_loading_the_model(workbench_home, monkeypatch):
    from workbench.config import TrainConfig
    from workbench.pairs import read_pairs
    from workbench.progress import ListSink
    from workbench.training import adapters_dir, train_adapter

    pairs, _ = read_pairs("pairs.jsonl", (samples.sample_dir() / "training_pairs.jsonl").read_bytes())
    monkeypatch.setenv("WORKBENCH_MAX_TRAIN_STEPS", "10")
    sink = ListSink()
    with pytest.raises(DataError, match="the limit is 10 optimisation steps per training, found 54"):
        train_adapter(pairs, TrainConfig(epochs=3, batch_size=4), workspace="lim", name="too-long", progress=sink)
    assert not any(e.message == "Loading the base model" for e in sink.events)
    assert not (adapters_dir("lim") / "too-long").exists()
