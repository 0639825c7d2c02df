"""Compare history: runs are stored and survive, blind votes are checked and tallied, the semantic
cache reuses answers only with the same settings, costs follow from measured figures."""

import json

from dataclasses import replace

import pytest

from tests.fakes import EchoGenerator
from workbench import samples
from workbench.config import GenerationConfig
from workbench.pricing import Pricing, Rate, answer_cost, default_prices
from workbench.records import Answer, Usage
from workbench.documents import parse_uploads
from workbench.errors import DataError
from workbench.history import (answer_rows, export_csv, export_json, get_run, history_dir, list_runs,
                               record_vote, run_and_record, vote_tally)
from workbench.index import close_all, open_index
from workbench.strategies import ComparisonSpec

Q = "How many days do I have to return a product?"


@pytest.fixture
def small_index(workbench_home):
    close_all()
    index = open_index("h")
    index.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "faq.md"])[0])
    yield index
    close_all()


def test_runs_are_stored_and_read_back(workbench_home):
    run = run_and_record(Q, ComparisonSpec(("base",), EchoGenerator()), workspace="h")
    again = list_runs("h")
    assert [r.id for r in again] == [run.id] and again[0].answers[0].text == f"Echo: {Q}"
    assert again[0] == run and isinstance(again[0].answers[0].usage, Usage)  # read back as it was stored
    assert again[0].settings["generation"]["max_new_tokens"] == 160
    (history_dir("h") / "broken.json").write_text("{not json")
    assert len(list_runs("h")) == 1  # a damaged file is skipped, the rest still loads
    # A run stored by an earlier version (no signature, no cache fields, no modes) still loads.
    (history_dir("h") / "20200101-000000-aaaaaa.json").write_text(json.dumps({
        "id": "20200101-000000-aaaaaa", "created_at": 1.0, "question": "Old?", "answers": [
            {"mode": "rag", "question": "Old?", "text": "Thirty days.", "model_id": "local:smollm2-135m",
             "messages": [], "timings": [{"stage": "dense_search", "seconds": 0.5}, {"stage": "decode", "seconds": 2.0}],
             "usage": {"tokens_in": 10, "tokens_out": 5}}]}))
    old = list_runs("h")[0]
    assert old.modes == ["rag"] and old.answers[0].retrieval_s == 0.5 and old.answers[0].tokens_per_s == 2.0
    assert old.answers[0].signature is None and old.answers[0].cache_hit is None
    exported = json.loads(export_json(list_runs("h")))
    assert "question_vector" not in exported[-1] and exported[-1]["question"] == Q
    csv_text = export_csv(answer_rows(list_runs("h"))).decode()
    assert csv_text.splitlines()[0].startswith("question_no,run_id") and "Echo: " in csv_text
    assert ",1970-01-01T00:00:01+00:00," in csv_text  # times a person can read
    with pytest.raises(DataError):
        get_run("h", "../../etc/passwd")


def test_downloads_name_the_data_folder_not_the_servers_path(workbench_home):
    from workbench import paths

    run = run_and_record(Q, ComparisonSpec(("base",), EchoGenerator()), workspace="h")
    adapter = str(paths.workspace_dir("h") / "adapters" / "house")
    stored = replace(run, settings={**run.settings, "adapter_path": adapter})
    data = export_json([stored]).decode()
    assert str(paths.home()) not in data and '"$WORKBENCH_HOME/workspaces/h/adapters/house"' in data


def test_blind_vote_validation_and_tally(workbench_home, small_index):
    run = run_and_record(Q, ComparisonSpec(("base", "rag"), EchoGenerator(), blind=True), workspace="h",
                         index=small_index, blind_order=["rag", "base"])
    assert run.blind["order"] == ["rag", "base"] and run.blind["vote"] is None
    with pytest.raises(DataError, match="Expected a vote of A, B or 'all_bad'"):
        record_vote("h", run.id, "C")
    assert record_vote("h", run.id, "A").blind["winner"] == "rag"
    plain = run_and_record(Q, ComparisonSpec(("base",), EchoGenerator()), workspace="h")
    with pytest.raises(DataError, match="not a blind comparison"):
        record_vote("h", plain.id, "A")
    second = run_and_record(Q, ComparisonSpec(("base", "rag"), EchoGenerator(), blind=True), workspace="h",
                            index=small_index)
    record_vote("h", second.id, "all_bad")
    tally = vote_tally(list_runs("h"))
    assert tally == {"votes": 2, "all_bad": 1, "wins": {"rag": 1}, "entered": {"rag": 2, "base": 2}}


def test_semantic_cache_reuses_only_with_the_same_settings(workbench_home, small_index):
    gen = EchoGenerator()
    cached = ComparisonSpec(("base", "rag"), gen, cache_threshold=0.95)
    first = run_and_record(Q, cached, workspace="h", index=small_index)
    assert not any(a.cache_hit for a in first.answers)
    # A miss spent the lookup too, and the question was embedded once (for the cache and the retrieval).
    for answer in first.answers:
        stages = [t.stage for t in answer.timings]
        assert stages.count("embed_query") == 1 and stages.count("cache_lookup") == 1, stages
    # A paraphrase close enough: both answers come from the cache, marked, with no tokens spent.
    hit = run_and_record("How many days do I have to return a product", cached, workspace="h", index=small_index)
    for answer, earlier in zip(hit.answers, first.answers):
        assert answer.cache_hit["run_id"] == first.id and answer.cache_hit["similarity"] >= 0.95
        assert answer.usage.tokens_out == 0 and list(answer.stages) == ["embed_query", "cache_lookup"]
        assert answer.text == earlier.text and answer.original_usage == earlier.usage  # the earlier answer
    # Cache off, other wording, other settings: generated.
    base = cached.with_modes(["base"])
    assert not run_and_record(Q, replace(base, cache_threshold=None), workspace="h").answers[0].cache_hit
    assert not run_and_record("Do you ship to Norway?", base, workspace="h").answers[0].cache_hit
    other = run_and_record(Q, replace(base, generation=GenerationConfig(max_new_tokens=20)), workspace="h")
    assert not other.answers[0].cache_hit
    # A changed index invalidates RAG answers but not base answers.
    small_index.add_documents(parse_uploads([d for d in samples.sample_documents()
                                             if d[0] == "returns-policy.md"])[0])
    after = run_and_record(Q, cached, workspace="h", index=small_index)
    assert after.answer("base").cache_hit and not after.answer("rag").cache_hit
    with pytest.raises(DataError, match="cache threshold"):
        ComparisonSpec(("base",), gen, cache_threshold=1.5)


def test_costs_follow_from_measured_seconds_and_prices():
    answer = Answer.from_dict({
        "model_id": "local:smollm2-135m", "batch_size": 4, "usage": {"tokens_in": 100, "tokens_out": 50},
        "timings": [{"stage": "embed_query", "seconds": 0.2}, {"stage": "ttft", "seconds": 1.0},
                    {"stage": "decode", "seconds": 3.0}]})
    assert answer.machine_s == pytest.approx(0.2 + 4.0 / 4)
    table = default_prices()
    assert answer_cost(answer, table, Rate("box", 3.6, 1.0)).usd == pytest.approx(1.2 * 3.6 / 3600)
    assert answer_cost(answer, table, Rate("box", 3.6, 4.0)).usd == pytest.approx(1.2 / 4 * 3.6 / 3600)
    assert answer_cost(answer, table, Rate("laptop", 0.0, 1.0)).usd == 0.0
    # A GPU whose speed-up over the measuring machine is not stated prices nothing, rather than as if
    # it were no faster; so does hardware without a price.
    for rate in (Rate("GPU", 4.1, None), Rate("GPU", None, 2.0)):
        assert answer_cost(answer, table, rate).usd is None
    api = replace(answer, model_id="openai:gpt-4o-mini")
    assert answer_cost(api, table, Rate("GPU", None, None)).usd == pytest.approx((100 * 0.15 + 50 * 0.60) / 1e6)
    unknown = answer_cost(replace(answer, model_id="openai:some-new-model"), table, Rate("box", 1.0, 1.0))
    assert unknown.usd is None and "no price" in unknown.basis


def test_answer_rows_number_questions_and_compute_tokens_per_second(workbench_home):
    gen = EchoGenerator()
    run_and_record("First question here?", ComparisonSpec(("base",), gen), workspace="h")
    run_and_record("Second question here?", ComparisonSpec(("base",), gen), workspace="h")
    laptop = Pricing(default_prices(), Rate("laptop", 0.0, 1.0))
    rows = answer_rows(list_runs("h"), laptop)
    assert [r["question_no"] for r in rows] == [1, 2]
    assert rows[0]["tokens_out"] == 4 and rows[0]["cost_usd"] == 0.0 and rows[0]["approach"] == "Base"


def test_a_comparison_embeds_its_question_once(workbench_home, small_index, monkeypatch):
    embedder = small_index.embedder()
    calls = []
    original = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts, *a, **k: calls.append(list(texts)) or original(texts, *a, **k))
    run_and_record(Q, ComparisonSpec(("base", "rag", "hybrid"), EchoGenerator()), workspace="h", index=small_index)
    assert calls == [[Q]]


def test_embedders_and_rerankers_share_one_shape(small_index):
    from workbench.embedding import Embedder
    from workbench.retrieval import Reranker, SentenceMaxSimReranker, get_reranker

    assert isinstance(small_index.embedder(), Embedder)
    reranker = get_reranker(SentenceMaxSimReranker.reranker_id, small_index)
    assert isinstance(reranker, Reranker)


def test_a_cross_encoder_from_a_local_folder_reranks_the_hits(small_index, tmp_path):
    """``cross:FOLDER`` loads a sentence-transformers CrossEncoder and orders the hits by its scores. The
    one built here puts an untrained scoring head on the packaged MiniLM: this checks the loading and
    the wiring, not the quality (no trained cross-encoder ships offline)."""
    from sentence_transformers import CrossEncoder

    from workbench import models
    from workbench.config import RetrievalConfig
    from workbench.retrieval import CrossEncoderReranker, Reranker, clear_rerankers, get_reranker, retrieve

    folder = tmp_path / "cross-encoder"
    CrossEncoder(str(models.minilm_dir()), num_labels=1).save(str(folder))
    reranker_id = f"cross:{folder}"
    try:
        reranker = get_reranker(reranker_id, small_index)
        assert isinstance(reranker, CrossEncoderReranker) and isinstance(reranker, Reranker)
        result = retrieve(small_index, Q, RetrievalConfig(top_k=3, candidates=6, keyword=False,
                                                          reranker_id=reranker_id))
        assert [t.stage for t in result.timings][-1] == "rerank" and len(result.hits) == 3
        scores = [h.rerank_score for h in result.hits]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx(reranker.score(Q, None, result.hits), abs=1e-5)
    finally:
        clear_rerankers()
