"""Evaluation metrics on hand-made cases where the right value is known, test-set validation with
line numbers, and evaluation runs: stored, summarised, cancelled with partial results kept,
interrupted runs reported, leakage warned, repeated runs reproduced."""

import json
import threading

import pytest

from tests.fakes import EchoGenerator
from workbench import samples
from workbench.documents import parse_uploads
from workbench.errors import DataError
from workbench.eval_runs import evaluate, evals_dir, get_eval_run, list_eval_runs
from workbench.eval_summary import accuracy, compare_runs, per_question, same_answers, summarize
from workbench.evaluation import (TestItem, answer_core, exact_match, groundedness, is_refusal, leakage,
                                  mentions_source, percentile, read_testset, token_f1)
from workbench.index import close_all, open_index
from workbench.records import Adapter, EvalResult
from workbench.strategies import ComparisonSpec


def test_token_f1_and_exact_match():
    assert token_f1("The cat sat.", "cat sat") == 1.0
    assert token_f1("cat", "dog") == 0.0
    # 2 of 2 predicted tokens are right (precision 1), 2 of 5 reference tokens found (recall 0.4).
    assert token_f1("45 days", "within 45 days of delivery") == pytest.approx(2 * 1 * 0.4 / 1.4)
    assert exact_match("  The 45 days! ", "45 days") and not exact_match("45 days", "30 days")


def test_answer_core_refusals_and_sources():
    formatted = "Summary: returns\nAnswer: Within 45 days of delivery.\nSources: returns-policy.md"
    assert answer_core(formatted) == "Within 45 days of delivery."
    assert answer_core("Just text.") == "Just text."
    for text in ("I don't know.", "Sorry, I do not know that.", "The passages do not mention revenue.",
                 "I cannot find that in the documents."):
        assert is_refusal(text), text
    assert not is_refusal("You can return a product within 45 days.")
    citations = [{"doc_name": "faq.md"}, {"doc_name": "returns-policy.md"}]
    assert mentions_source("Within 45 days [2].", "returns-policy.md", citations)
    assert not mentions_source("Within 45 days [1].", "returns-policy.md", citations)
    assert mentions_source(formatted, "returns-policy.md", [])
    assert mentions_source("See the returns-policy for details.", "returns-policy.md", [])


def test_groundedness_counts_supported_sentences():
    chunk = "You can return any product within 45 days of the delivery date for a full refund."
    answer = "You can return a product within 45 days of delivery. Our shop also sells bicycles in Tokyo."
    assert groundedness(answer, [chunk]) == 0.5
    assert groundedness("Return within 45 days of delivery for a full refund.", [chunk]) == 1.0
    assert groundedness("Yes.", [chunk]) is None  # no sentence long enough to judge
    assert groundedness(answer, []) is None


def test_percentile_and_leakage():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([5], 0.95) == 5 and percentile([], 0.5) is None
    found = leakage(["How long is the warranty?", "Do you ship to Norway?"],
                    ["how long is the WARRANTY", "What is the fee?"])
    assert [f["question"] for f in found] == ["How long is the warranty?"]


def test_read_testset_reports_bad_rows_with_line_numbers():
    data = b"\n".join([
        b'{"question": "Q1?", "reference": "A1"}',
        b'{"question": "", "reference": "A2"}',
        b'not json',
        b'{"question": "Q4?", "reference": "I don\'t know.", "answerable": "no"}',
        b'{"question": "Q5?", "reference": "A5", "answerable": "maybe"}',
    ])
    items, report = read_testset("set.jsonl", data)
    assert [i.question for i in items] == ["Q1?", "Q4?"] and items[1].answerable is False
    assert report.problems[0].startswith("set.jsonl line 2: expected a non-empty 'question'")
    assert report.problems[1].startswith("set.jsonl line 3: not valid JSON")
    assert "line 5: expected 'answerable' to be true or false, got 'maybe'" in report.problems[2]
    csv_items, _ = read_testset("set.csv", b"question,reference,source,answerable\nQ?,A,faq.md,true\n")
    assert csv_items[0].source == "faq.md" and csv_items[0].line == 2
    with pytest.raises(DataError, match="expected a header with 'question' and 'reference' columns, found q, a"):
        read_testset("bad.csv", b"q,a\nx,y\n")
    with pytest.raises(DataError, match="expected a .jsonl or .csv test set"):
        read_testset("set.txt", b"hello")
    with pytest.raises(DataError, match="expected a test set \\(JSONL or CSV\\), found an empty file"):
        read_testset("empty.jsonl", b"\n\n")
    with pytest.raises(DataError, match="expected at least one usable question"):
        read_testset("none.jsonl", b"\n# nothing\n")
    with pytest.raises(DataError, match="NUL bytes"):
        read_testset("bin.jsonl", b"\xff\xfe\x00")
    # Latin-1 on line 2: the line and column of the first byte that is not UTF-8, as an editor shows them.
    with pytest.raises(DataError, match="in UTF-8; line 2, column 18 holds byte 0xe9"):
        read_testset("latin.jsonl", b'{"question": "A?", "reference": "B"}\n{"question": "Caf\xe9?", '
                                    b'"reference": "D"}\n')
    sample, report = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    assert len(sample) == 50 and report.ok and sum(not i.answerable for i in sample) == 8


@pytest.fixture
def small_index(workbench_home):
    close_all()
    index = open_index("e")
    index.add_documents(parse_uploads([d for d in samples.sample_documents()
                                       if d[0] in {"faq.md", "returns-policy.md"}])[0])
    yield index
    close_all()


ITEMS = [TestItem("q1", "How many days do I have to return a product?", "Within 45 days of delivery.",
                  "returns-policy.md"),
         TestItem("q2", "What was the revenue last year?", "I don't know.", None, answerable=False),
         TestItem("q3", "Do you sell gift cards?", "Yes, digital gift cards.", "faq.md")]


def test_evaluation_run_is_stored_with_config_and_summarised(small_index):
    run = evaluate(ITEMS, ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="e", index=small_index, testset_name="mini")
    stored = get_eval_run("e", run.id)
    assert stored == run and isinstance(stored.results[0], EvalResult)  # read back as it was written
    assert stored.status == "done" and stored.done == 3 and len(stored.results) == 6
    assert stored.config["retrieval"]["top_k"] == 5 and stored.config["generation"]["temperature"] == 0.0
    assert stored.testset["count"] == 3 and stored.config["index_fingerprint"] == small_index.fingerprint()
    summary = summarize(stored)
    assert set(summary) == {"base", "rag"}
    assert summary["rag"]["retrieved"] == 1.0  # both expected sources were retrieved
    assert summary["base"]["retrieved"] is None  # base retrieves nothing
    assert summary["base"]["refused_when_should"] == 0.0  # the echo never says it does not know
    assert summary["rag"]["latency_p50_s"] > 0 and summary["rag"]["tokens_in_per_1k"] > summary["base"]["tokens_in_per_1k"]
    rows = per_question(stored)
    assert len(rows) == 3 and "rag_answer" in rows[0] and "disagree" in rows[0]
    assert set(accuracy(stored)) == {"base", "rag"}
    assert any(r["metric"] == "f1" for r in compare_runs(stored, stored))


def test_cancelled_run_keeps_its_finished_questions(small_index):
    cancel = threading.Event()

    def progress(event):
        if event.step == 2:
            cancel.set()

    run = evaluate(ITEMS, ComparisonSpec(("base",), EchoGenerator()), workspace="e", index=small_index, progress=progress,
                   cancel=cancel)
    stored = get_eval_run("e", run.id)
    assert stored.status == "cancelled" and stored.done == 2 and len(stored.results) == 2
    assert "kept" in stored.error


def test_a_run_left_running_by_a_stopped_process_is_reported_interrupted(workbench_home):
    evals_dir("e").mkdir(parents=True)
    (evals_dir("e") / "20260101-000000-abc123.json").write_text(json.dumps(
        {"id": "20260101-000000-abc123", "created_at": 1.0, "status": "running", "done": 4, "results": [],
         "config": {"modes": ["base"]}}))
    (run,) = list_eval_runs("e")
    assert run.status == "interrupted" and "4 questions finished before are kept" in run.error


def test_leakage_is_warned_when_the_test_set_overlaps_the_training_pairs(small_index, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "training_pairs.jsonl").write_text(json.dumps(
        {"question": "Do you sell gift cards?", "answer": "Summary: yes\nAnswer: Yes.\nSources: faq.md"}) + "\n")
    # a folder without metadata still evaluates
    spec = ComparisonSpec(("base", "finetuned"), EchoGenerator(), adapter=Adapter.from_meta({}, str(adapter)))
    run = evaluate(ITEMS[:1] + ITEMS[2:], spec, workspace="e", index=small_index)
    assert [f["question"] for f in run.leakage] == ["Do you sell gift cards?"]
    finetuned = run.results_of("finetuned")[0]
    assert finetuned.provenance["nearest_pair"] == "Do you sell gift cards?"


@pytest.mark.slow
def test_a_repeated_run_reproduces_the_same_greedy_answers(small_index):
    from workbench import models
    from workbench.config import GenerationConfig

    gen = models.get_generator("local:smollm2-135m")
    spec = ComparisonSpec(("base", "rag"), gen, generation=GenerationConfig(max_new_tokens=24))
    first = evaluate(ITEMS[:2], spec, workspace="e", index=small_index)
    second = evaluate(ITEMS[:2], spec, workspace="e", index=small_index)
    assert same_answers(first, second) == 1.0 and len(first.results) == 4
    assert all(r.batch_size == 2 for r in first.results)


def test_knowledge_update_experiment_times_the_reindex_and_uses_updated_answers(small_index):
    from workbench.eval_runs import knowledge_update

    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    updated = samples.updated_document("returns-policy.md")
    out = knowledge_update(items, ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="e", index=small_index, updated=updated)
    assert out["questions"] == 5 and out["reindex_s"] > 0 and out["reindexed_chunks"] > 0
    assert out["retrain_s"] is None and out["retrain_basis"].startswith("unknown")
    before, after = out["before"], out["after"]
    assert before.testset["reference"] == "reference" and after.testset["reference"] == "updated_reference"
    assert "30 days" in after.results[0].reference and "45 days" in before.results[0].reference
    assert get_eval_run("e", after.id).experiment["before_run"] == before.id
    assert "30 days" in small_index.document_text("returns-policy.md")
    with pytest.raises(DataError, match="already holds the updated"):
        knowledge_update(items, ComparisonSpec(("base",), EchoGenerator()), workspace="e", index=small_index, updated=updated)


def test_a_run_judged_by_an_earlier_judge_is_rejudged_without_generating(workbench_home, capsys):
    from workbench.cli import main
    from workbench.eval_runs import judge_version, rejudge
    from workbench.verdicts import JUDGE_VERSION

    answer = {"mode": "rag", "question": "How much does Grow Plus cost?", "model_id": "m",
              "text": "Grow Plus costs €2.99 per month or €29 per year. You pay €29 per month.",
              "reference": "Grow Plus costs €2.99 per month or €29 per year.", "item_id": "q27", "answerable": True,
              "metrics": {"verdict": "correct", "similarity": 0.9, "f1": 0.8, "exact": 0.0, "grounded": None,
                          "retrieved": None, "cited": None, "format_ok": 0.0, "refused": False, "refusal_ok": 1.0}}
    legacy = {"id": "20260101-000000-aaaaaa", "created_at": 1.0, "status": "done", "done": 1, "results": [answer],
              "config": {"modes": ["rag"], "background_names": []}, "testset": {"reference": "reference"}}
    evals_dir("e").mkdir(parents=True)
    (evals_dir("e") / f"{legacy['id']}.json").write_text(json.dumps(legacy))
    updated = legacy | {"id": "20260101-000000-bbbbbb", "testset": {"reference": "updated_reference"}}
    (evals_dir("e") / f"{updated['id']}.json").write_text(json.dumps(updated))
    assert judge_version(get_eval_run("e", legacy["id"])) == 1 < JUDGE_VERSION
    run = rejudge("e", legacy["id"])
    (result,) = run.results
    assert result.metrics["verdict"] == "wrong" and "€29 per month" in result.metrics["verdict_detail"]["reason"]
    assert result.metrics["f1"] == 0.8 and result.text == answer["text"]  # only the verdict changed
    assert get_eval_run("e", legacy["id"]) == run and judge_version(run) == JUDGE_VERSION
    # an old knowledge-update run never stored the old answers: stale cannot be told from wrong
    with pytest.raises(DataError, match="stale answers cannot be told"):
        rejudge("e", updated["id"])
    assert main(["rejudge", "--workspace", "e", legacy["id"]]) == 0
    assert "re-judged with judge version" in capsys.readouterr().out


def test_knowledge_update_runs_keep_the_old_answer_so_they_can_be_rejudged(small_index):
    from workbench.eval_runs import knowledge_update, rejudge

    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    out = knowledge_update(items, ComparisonSpec(("base",), EchoGenerator()), workspace="e", index=small_index,
                           updated=samples.updated_document("returns-policy.md"))
    after = out["after"]
    by_id = {i.id: i for i in items}
    assert all(r.old_reference == by_id[r.item_id].reference for r in after.results)
    rejudged = rejudge("e", after.id).experiment
    assert rejudged["after_verdicts"] == out["after_verdicts"] and rejudged["transitions"] == out["transitions"]
    assert out["transitions"]["base"]["questions"] == 5


def test_html_report_is_self_contained_and_escapes_answers(small_index):
    from workbench.reports import evaluation_report

    items = [TestItem("x1", "What is <script>alert(1)</script>?", "Nothing.", None)]
    run = evaluate(items, ComparisonSpec(("base",), EchoGenerator()), workspace="e", index=small_index)
    html_text = evaluation_report(run)
    assert html_text.startswith("<!DOCTYPE html>") and "Evaluation report" in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text and "<script>alert(1)" not in html_text
    assert len(html_text) > 1_000_000 and "src=\"https://cdn.plot.ly" not in html_text  # plotly.js embedded
    assert html_text.count("Plotly.newPlot") >= 4  # quality, cost, latency, latency spread
    assert "Correct vs cost" in html_text and "Correct vs latency" in html_text and "Source cited" in html_text


def test_llm_judge_is_optional_and_its_cost_is_counted(small_index):
    from workbench.generation.base import Execution, Generator

    class Judge(Generator):
        model_id = "openai:gpt-4o-mini"

        def _execute(self, messages, config, emit, adapter=None):
            emit("CORRECT. It states the same window.")
            return Execution(120, 8)

        def count_tokens(self, text):
            return len(text.split())

    run = evaluate(ITEMS[:2], ComparisonSpec(("base",), EchoGenerator()), workspace="e", index=small_index, judge=Judge())
    assert run.config["judge"] == "openai:gpt-4o-mini"
    assert all(r.metrics["judge"] == 1.0 and r.judge["reason"].startswith("CORRECT") for r in run.results)
    summary = summarize(run)["base"]
    assert summary["judge"] == 1.0 and summary["judge_tokens"] == 2 * 128
    assert summary["judge_cost_usd"] == pytest.approx(2 * (120 * 0.15 + 8 * 0.60) / 1e6)
    assert "judge" not in summarize(evaluate(ITEMS[:1], ComparisonSpec(("base",), EchoGenerator()), workspace="e",
                                             index=small_index))["base"]


def test_update_transitions_tell_an_approach_that_went_stale_from_one_that_never_knew():
    """Across a document update each approach's questions are followed one by one: right before and updated,
    right before and stale, or never right before (then its verdicts after say nothing about staleness)."""
    from workbench.eval_summary import update_transitions
    from workbench.records import EvalRun

    def run(answers, reference, old=None):
        return EvalRun.from_dict({"id": "x", "created_at": 1.0, "status": "done", "done": len(answers), "results": [
            {"mode": mode, "question": f"q{i}", "item_id": f"q{i}", "text": text, "model_id": "m",
             "reference": reference, "old_reference": old, "answerable": True,
             "metrics": {"verdict": verdict}} for mode, i, text, verdict in answers]})

    old, new = "You can return a product within 45 days.", "You can return a product within 30 days."
    before = run([("rag", 1, "45 days", "correct"), ("rag", 2, "45 days", "correct"),
                  ("finetuned", 1, "3 days", "wrong"), ("finetuned", 2, "I don't know", "refused"),
                  ("hybrid", 1, "45 days", "correct"), ("hybrid", 2, "45 days", "correct")], old)
    after = run([("rag", 1, "30 days", "correct"), ("rag", 2, "45 days", "stale"),
                 ("finetuned", 1, "3 days", "wrong"), ("finetuned", 2, "30 days", "correct"),
                 ("hybrid", 1, "45 days", "stale"), ("hybrid", 2, "60 days", "wrong")], new, old)
    t = update_transitions(before, after)
    assert t["rag"] == {"questions": 2, "knew": 2, "updated": 1, "stale": 1, "other": 0, "learned": 0}
    assert t["finetuned"] == {"questions": 2, "knew": 0, "updated": 0, "stale": 0, "other": 0, "learned": 1}
    assert t["hybrid"] == {"questions": 2, "knew": 2, "updated": 0, "stale": 1, "other": 1, "learned": 0}


def test_the_advisor_reads_a_full_evaluation_not_a_knowledge_update_run_made_after_it(small_index):
    """A knowledge-update experiment run after an evaluation must not become the evidence behind Decide, the
    memo or the leaderboard: its few questions about one document say who caught up, not what to ship."""
    from workbench import costs
    from workbench.decision_store import latest_run
    from workbench.eval_runs import decision_runs, is_update_run, knowledge_update
    from workbench.workspaces import leaderboard

    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    full = evaluate(items[:6], ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="e", index=small_index)
    out = knowledge_update(items, ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="e", index=small_index,
                           updated=samples.updated_document("returns-policy.md"))
    assert is_update_run(out["before"]) and is_update_run(out["after"]) and not is_update_run(full)
    assert out["after"].created_at > full.created_at
    assert [r.id for r in decision_runs("e")] == [full.id] and latest_run("e").id == full.id
    assert {r["run"] for r in leaderboard() if r["workspace"] == "e"} == {full.id}
    # the memo's and Costs page's measured usage too, unless a run is named
    assert full.id in costs.measured_usage("e").source and set(costs.measured_usage("e").modes) == {"base", "rag"}
    assert out["after"].id in costs.measured_usage("e", out["after"]).source


def test_the_format_is_read_from_the_workspaces_own_pairs_and_old_runs_are_checked_again(small_index):
    """A workspace whose pairs use their own labelled lines is checked against those, not the sample's
    Summary / Answer / Sources; a run stored before checks were read from the pairs is checked again by
    ``rejudge``."""
    from workbench import paths
    from workbench.eval_runs import rejudge
    from workbench.formats import DEFAULT_PATTERN, workspace_check
    from workbench.generation.base import Execution

    check, origin = workspace_check("own")
    assert check.pattern == DEFAULT_PATTERN and "no training pairs" in origin
    paths.workspace_dir("damaged").mkdir(parents=True, exist_ok=True)
    (paths.workspace_dir("damaged") / "training_pairs.jsonl").write_text("not json\n", encoding="utf-8")
    assert workspace_check("damaged")[0].pattern == DEFAULT_PATTERN  # a damaged file is passed over, not fatal
    own = "Short answer: {}\nDetails: Rentals start at the depot.\nRef: rental-policy.md"
    paths.workspace_dir("own").mkdir(parents=True, exist_ok=True)
    (paths.workspace_dir("own") / "training_pairs.jsonl").write_text("".join(
        json.dumps({"question": f"Question {i}?", "answer": own.format(i)}) + "\n" for i in range(5))
        + json.dumps({"question": "Odd one?", "answer": "Just a sentence."}) + "\n", encoding="utf-8")
    check, origin = workspace_check("own")
    assert check.lines == ("Short answer:", "Details:", "Ref:") and "this workspace's training pairs" in origin
    assert check.passes(own.format("Yes")) and not check.passes("Summary: Yes\nAnswer: Yes.\nSources: faq.md")
    assert not check.passes("Short answer: Yes")  # every line, one each

    class OwnFormat(EchoGenerator):
        def _execute(self, messages, config, emit, adapter=None):
            lines = own.format("Yes").split(" ")
            for i, word in enumerate(lines):
                emit(word if i == 0 else " " + word)
            return Execution(10, len(lines), "stop")

    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    run = evaluate(items[:2], ComparisonSpec(("base",), OwnFormat()), workspace="own", index=small_index)
    assert all(r.metrics["format_ok"] == 1.0 for r in run.results)
    assert run.config["format_check"]["lines"] == ["Short answer:", "Details:", "Ref:"]
    # A run made before: the sample's format assumed, no origin stored. Re-judging checks it against the pairs.
    stored = json.loads(evals_dir("own").joinpath(f"{run.id}.json").read_text())
    stored["config"]["format_check"] = {"kind": "regex", "pattern": DEFAULT_PATTERN,
                                        "lines": ["Summary:", "Answer:", "Sources:"]}
    for r in stored["results"]:
        r["metrics"]["format_ok"] = 0.0
    evals_dir("own").joinpath(f"{run.id}.json").write_text(json.dumps(stored))
    again = rejudge("own", run.id)
    assert all(r.metrics["format_ok"] == 1.0 for r in again.results)
    assert "this workspace's training pairs" in again.config["format_check"]["origin"]


def test_a_format_pattern_that_would_take_forever_is_stopped_with_a_clear_error():
    """A typed pattern with nested repeats must not stall a shared server: the match has a time limit."""
    import time

    from workbench.errors import ConfigError
    from workbench.formats import MATCH_TIMEOUT_S, FormatCheck

    started = time.monotonic()
    with pytest.raises(ConfigError, match="took over") as err:
        FormatCheck("regex", "(a|aa)+b").passes("a" * 80)
    assert time.monotonic() - started < 10 * MATCH_TIMEOUT_S and "nested repeats" in err.value.fix


def test_a_source_named_from_memory_is_not_counted_as_cited(small_index):
    """An approach given no passage that writes a file name wrote it from memory (Compare flags it as an
    invented source): its "Source cited" does not apply, as its grounding does not; RAG's counts."""
    from workbench.generation.base import Execution

    class NamesTheSource(EchoGenerator):
        def _execute(self, messages, config, emit, adapter=None):
            emit("Summary: see the policy\nAnswer: See the policy.\nSources: returns-policy.md")
            return Execution(10, 12, "stop")

    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    item = next(i for i in items if i.source == "returns-policy.md")
    run = evaluate([item], ComparisonSpec(("base", "rag"), NamesTheSource()), workspace="m", index=small_index)
    cited = {r.mode: r.metrics["cited"] for r in run.results}
    assert cited == {"base": None, "rag": 1.0}
