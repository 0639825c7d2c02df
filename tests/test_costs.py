"""Costs: the price table (defaults with sources, edits marked, bad cells refused), per-answer cost
and the API what-if, the monthly projection (one cell recomputed by hand), break-even points that
move with prices and traffic, and unknown prices shown as unknown, never as $0."""

import dataclasses
import json
import shutil

import pytest

from tests.conftest import SHARED_MODELS
from tests.fakes import EchoGenerator
from workbench import costs, pricing, samples
from workbench.api_tokens import api_tokens
from workbench.documents import parse_uploads
from workbench.errors import DataError
from workbench.eval_runs import evaluate
from workbench.evaluation import TestItem
from workbench.index import close_all, close_workspace, open_index
from workbench.paths import workspace_dir
from workbench.records import Answer, Run
from workbench.training import ADAPTER_META, adapters_dir, load_adapter
from workbench.strategies import ComparisonSpec

ITEMS = [TestItem("q1", "How many days do I have to return a product?", "Within 45 days of delivery.",
                  "returns-policy.md"),
         TestItem("q2", "What was the revenue last year?", "I don't know.", None, answerable=False),
         TestItem("q3", "Do you sell gift cards?", "Yes, digital gift cards.", "faq.md"),
         TestItem("q4", "Is there a restocking fee?", "Yes, 8% for opened products.", "returns-policy.md"),
         TestItem("q5", "How do I start a return?", "Open a return request in your account.", "returns-policy.md")]


@pytest.fixture(scope="module")
def evaluated_home(tmp_path_factory):
    """Workspace 'c', built once for the module: two indexed documents, an adapter with a training
    record, and an evaluation of every approach (a fake generator: the boundary these tests are not
    about). Each test gets a copy (``evaluated``)."""
    home = tmp_path_factory.mktemp("costs") / "wbhome"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        env.setenv("WORKBENCH_MODELS_DIR", str(SHARED_MODELS))
        close_all()
        index = open_index("c")
        index.add_documents(parse_uploads([d for d in samples.sample_documents()
                                           if d[0] in {"faq.md", "returns-policy.md"}])[0])
        adapter = adapters_dir("c") / "house"
        adapter.mkdir(parents=True)
        (adapter / ADAPTER_META).write_text(json.dumps({
            "name": "house", "base_model": EchoGenerator.model_id, "wall_s": 360.0, "steps": 30,
            "config": {"batch_size": 4, "epochs": 3}, "length_stats": {"median": 150}, "created_at": 1.0,
            "pairs": 40}))
        spec = ComparisonSpec(("base", "rag", "finetuned", "hybrid"), EchoGenerator(), adapter=load_adapter(adapter))
        run = evaluate(ITEMS, spec, workspace="c", index=index, testset_name="mini")
        close_workspace("c")  # the store's files are complete before they are copied
    return home, run


@pytest.fixture
def evaluated(workbench_home, evaluated_home):
    """A copy of the module's evaluated workspace in this test's own home."""
    home, run = evaluated_home
    close_all()
    shutil.copytree(home, workbench_home)
    yield run
    close_all()


def test_defaults_carry_a_source_and_a_date_and_edits_are_marked():
    table = pricing.default_prices()
    for category, rows in table.items():
        for row in rows:
            assert row["source"] and row["as_of"]
            assert pricing.row_status(category, row) == "default"
    table["api"][0]["input_per_m"] = 9.0
    table["hardware"].append({"name": "my server", "per_hour": 1.0, "as_of": "2026-11", "source": "our quote"})
    assert pricing.row_status("api", table["api"][0]) == "edited"
    assert pricing.row_status("hardware", table["hardware"][-1]) == "added"


def test_prices_are_saved_per_workspace_and_reset(workbench_home):
    table = pricing.default_prices()
    pricing.find_price(table, "hardware", "small GPU")["per_hour"] = 1.25
    pricing.save_prices("a", table)
    assert pricing.find_price(pricing.load_prices("a"), "hardware", "small GPU")["per_hour"] == 1.25
    assert pricing.find_price(pricing.load_prices("b"), "hardware", "small GPU")["per_hour"] == 0.526
    pricing.reset_prices("a")
    assert pricing.load_prices("a") == pricing.default_prices()


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["api"][0].update(input_per_m=-1), r"API models row 1 \(openai:gpt-4o-mini\), Input \$ / 1M tokens: "
                                                   r"expected 0 to 1,000, got -1"),
    (lambda t: t["hardware"][0].update(per_hour="cheap"), "expected a number, got 'cheap'"),
    (lambda t: t["hosting"][0].update(per_month=1e9), "expected 0 to 1,000,000, got 1,000,000,000"),
    (lambda t: t["embedding"].append(dict(t["embedding"][0])), "appears twice"),
    (lambda t: t["api"].append({"model": "", "input_per_m": 1.0}), "expected a model, got an empty cell"),
])
def test_bad_prices_are_refused_and_the_saved_table_kept(workbench_home, mutate, message):
    pricing.save_prices("a", pricing.default_prices())
    table = pricing.default_prices()
    mutate(table)
    with pytest.raises(DataError, match=message):
        pricing.save_prices("a", table)
    assert pricing.load_prices("a") == pricing.default_prices()


def test_a_missing_price_is_unknown_never_zero(evaluated):
    table = pricing.default_prices()
    pricing.find_price(table, "hardware", "small GPU").update(per_hour=None, speedup=10.0)  # no $/hour known
    measured = costs.measured_usage("c")
    result = costs.project(measured, costs.Projection(hardware="small GPU"), table)
    generation = next(c for c in result["rag"] if c.name == "Generation")
    assert generation.usd is None and "no $/hour known for small GPU" in generation.how
    assert costs.total(result["rag"]) is None
    empty = {c: [] for c in pricing.PRICE_COLUMNS}
    result = costs.project(measured, costs.Projection(), empty)
    assert all(costs.total(r) is None for r in result.values())
    none = pricing.Pricing(empty, pricing.hardware_rate(empty, "small GPU"))
    assert all(row["cost_usd"] is None for row in costs.usage_rows("c", none))


def test_measured_usage_comes_from_the_latest_evaluation(evaluated):
    measured = costs.measured_usage("c")
    assert measured.source.startswith(f"evaluation run {evaluated.id}")
    rag = evaluated.results_of("rag")
    assert measured.modes["rag"].tokens_in == pytest.approx(sum(r.usage.tokens_in for r in rag) / len(rag))
    assert measured.modes["rag"].tokens_in > measured.modes["base"].tokens_in  # retrieved chunks in the prompt
    assert measured.documents == 2 and measured.doc_tokens > 100
    assert measured.training_s == 360.0 and measured.training_tokens == 150 * 30 * 4
    assert measured.adapter == "house"


def test_a_cost_comparison_needs_enough_answers_and_names_its_assumptions(evaluated):
    measured = costs.measured_usage("c")
    table = pricing.default_prices()
    p = costs.Projection(queries_per_day=5000)
    sentence = costs.breakeven_sentences(measured, p, table)[0]
    assert "assuming the measured local model (fake:echo) on CPU server (2 vCPU) at $0.085/h" in sentence
    assert f"usage per answer from evaluation run {evaluated.id} (5 questions)" in sentence
    assert "the embedded index (no server)" in sentence and "always" not in sentence
    few = dataclasses.replace(measured, modes={k: dataclasses.replace(u, answers=2) for k, u in measured.modes.items()})
    assert costs.breakeven_sentences(few, p, table)[0].startswith("Fine-tuned vs RAG: not enough evidence yet")


def test_one_projection_cell_recomputed_by_hand(evaluated):
    measured = costs.measured_usage("c")
    table = pricing.default_prices()
    p = costs.Projection(queries_per_day=5000, docs_changed_per_month=2, generator="openai:gpt-4o-mini")
    result = costs.project(measured, p, table)
    rag = measured.modes["rag"]
    # RAG generation on gpt-4o-mini: 30 days x 5000 queries x (tokens in x $0.15 + tokens out x $0.60) / 1M
    by_hand = 30 * 5000 * (rag.tokens_in * 0.15 + rag.tokens_out * 0.60) / 1e6
    assert next(c for c in result["rag"] if c.name == "Generation").usd == pytest.approx(by_hand)
    # Fine-tuned training: (2 retrainings + 1/12 of the first) x tokens x $3.00 / 1M
    training = next(c for c in result["finetune"] if c.name == "Training and retraining").usd
    assert training == pytest.approx((2 + 1 / 12) * 150 * 30 * 4 * 3.00 / 1e6)
    # The vector database is a RAG cost only; the table's total row is the sum of its column.
    rows = costs.projection_rows(result)
    assert next(r for r in rows if r["component"] == "Vector database")["finetune"] == 0.0
    # By default it prices the store in use: the embedded index, no server; a hosted server when chosen.
    assert next(c for c in result["rag"] if c.name == "Vector database").usd == 0.0
    hosted = costs.project(measured, costs.Projection(queries_per_day=5000, vector_server=True), table)
    assert next(c for c in hosted["rag"] if c.name == "Vector database").usd == 30.37
    assert rows[-1]["rag"] == pytest.approx(sum(r["rag"] for r in rows[:-1]))


def test_local_generation_costs_machine_seconds_at_the_hardware_rate(evaluated):
    measured = costs.measured_usage("c")
    table = pricing.default_prices()
    p = costs.Projection(queries_per_day=100, hardware="large GPU")
    gen = next(c for c in costs.project(measured, p, table)["prompt"] if c.name == "Generation")
    assert gen.usd is None and "no speed-up stated" in gen.how  # never silently as fast as the measuring machine
    pricing.find_price(table, "hardware", "large GPU")["speedup"] = 2.0
    gen = next(c for c in costs.project(measured, p, table)["prompt"] if c.name == "Generation")
    assert gen.usd == pytest.approx(3000 * measured.modes["base"].machine_s / 2 / 3600 * 4.10)
    on = costs.project(measured, costs.Projection(queries_per_day=100, hardware="large GPU", always_on=True), table)
    assert next(c for c in on["prompt"] if c.name == "Generation").usd == pytest.approx(730 * 4.10)


def _typical() -> costs.Measured:
    """Usage shaped like the sample evaluation (RAG prompts ~8x longer than fine-tuned ones), with a
    training set of a real size (20M training tokens: ~10k pairs x 3 epochs)."""
    modes = {"base": costs.ModeUsage(60, 80, 3.0), "rag": costs.ModeUsage(800, 80, 6.0),
             "finetuned": costs.ModeUsage(100, 60, 2.5), "hybrid": costs.ModeUsage(850, 70, 6.5)}
    return costs.Measured(modes, "typed", 12, 10, 2000, training_s=360, training_tokens=20_000_000)


def test_break_even_moves_with_the_price_and_the_traffic():
    measured, table = _typical(), pricing.default_prices()
    p = costs.Projection(generator="openai:gpt-4o-mini", docs_changed_per_month=2)
    first = costs.breakeven_sentences(measured, p, table)
    assert first[0].startswith("Above ~") and "Fine-tuned is cheaper than RAG" in first[0]
    x1 = costs.crossings(costs.log_space(1, 1e7), *costs.curve(measured, p, table, "queries_per_day",
                                                            costs.log_space(1, 1e7), ("finetune", "rag")).values())
    table["api"][0]["training_per_m"] = 30.0  # fine-tuning 10x dearer: the crossing moves to more traffic
    x2 = costs.crossings(costs.log_space(1, 1e7), *costs.curve(measured, p, table, "queries_per_day",
                                                            costs.log_space(1, 1e7), ("finetune", "rag")).values())
    assert x2[0][0] > x1[0][0] * 5
    # Over the change rate (with a hosted Chroma server, whose monthly fee RAG pays): at more traffic,
    # fine-tuning stays cheaper up to more changes a month.
    low = costs.breakeven_sentences(measured, costs.Projection(generator="openai:gpt-4o-mini", queries_per_day=2000,
                                                               vector_server=True), pricing.default_prices())
    high = costs.breakeven_sentences(measured, costs.Projection(generator="openai:gpt-4o-mini",
                                                                queries_per_day=200_000, vector_server=True),
                                     pricing.default_prices())
    assert low[-1] != high[-1] and "change more than" in low[-1]
    # With the embedded index RAG has no fixed fee, and at 2,000 queries a day it is cheaper at any change rate.
    embedded = costs.breakeven_sentences(measured, costs.Projection(generator="openai:gpt-4o-mini",
                                                                    queries_per_day=2000), pricing.default_prices())
    assert embedded[-1].startswith("Whatever the change rate") and "RAG is the cheaper" in embedded[-1]


def test_whatif_counts_tokens_with_the_api_tokenizer_where_offline_else_estimates(evaluated):
    table = pricing.default_prices()
    answer = evaluated.results_of("rag")[0]
    exact = pricing.whatif_cost(answer, "openai:gpt-3.5-turbo", table)
    assert "counted with the model's tokenizer" in exact.basis
    tokens = api_tokens(answer, "openai:gpt-3.5-turbo")
    assert exact.usd == pytest.approx((tokens.tokens_in * 0.50 + tokens.tokens_out * 1.50) / 1e6)
    estimate = pricing.whatif_cost(answer, "openai:gpt-4o-mini", table)
    assert "estimate from the local model's tokenizer" in estimate.basis
    tuned = pricing.whatif_cost(answer, "openai:gpt-4o-mini", table, fine_tuned=True)
    assert tuned.usd == pytest.approx(estimate.usd * 2)
    assert pricing.whatif_cost(answer, "openai:unknown", table).usd is None


def test_every_answer_is_priced_with_its_source(evaluated):
    rows = costs.usage_rows("c", pricing.default_pricing(), "openai:gpt-4o-mini")
    assert len(rows) == 4 * len(ITEMS) and {r["where"] for r in rows} == {f"Evaluation {evaluated.id}"}
    assert all(r["cost_usd"] is not None and r["whatif_usd"] is not None for r in rows)
    r = rows[0]
    assert r["cost_usd"] == pytest.approx(r["machine_s"] * 0.085 / 3600, rel=1e-3)


@pytest.mark.parametrize("kwargs, message", [
    ({"queries_per_day": -1}, "queries per day"),
    ({"docs_changed_per_month": -3}, "documents changed per month"),
    ({"retrains_per_month": 10_000}, "retrainings per month"),
    ({"amortise_months": 0}, "amortise"),
])
def test_absurd_projection_inputs_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        costs.Projection(**kwargs)


def test_projection_inputs_survive_a_restart_and_a_damaged_file_falls_back(workbench_home):
    costs.save_projection("a", costs.Projection(queries_per_day=42), {"rag": {"tokens_in": 5.0}})
    p, overrides = costs.load_projection("a")
    assert p.queries_per_day == 42 and overrides == {"rag": {"tokens_in": 5.0}}
    (workspace_dir("a") / costs.PROJECTION_FILE).write_text('{"projection": {"queries_per_day": -4}}')
    assert costs.load_projection("a")[0] == costs.Projection()


# -- the decision memo ---------------------------------------------------------------------------------------
def _memo(workspace: str, answers, run):
    from workbench.decision import Evidence, recommend
    from workbench.memo import memo_content

    measured, table = costs.measured_usage(workspace), pricing.default_prices()
    p = costs.Projection(queries_per_day=answers.queries_per_day)
    result = costs.project(measured, p, table)
    rec = recommend(answers, Evidence.from_run(run) if run else None)
    return rec, memo_content(workspace, answers, rec, run, measured, p, table, result,
                             costs.breakeven_sentences(measured, p, table))


def test_memo_holds_question_data_measurements_projection_reasons_and_dated_prices(evaluated):
    from workbench.charts import cost_stack_chart
    from workbench.decision import Answers
    from workbench.memo import memo_html, memo_markdown

    rec, content = _memo("c", Answers(data_changes="weekly", citations_required=True), evaluated)
    md = memo_markdown(content)
    for heading in ("## The question", "## Recommendation", "## Data used", "## Measured comparison",
                    "## Monthly cost projection", "### Break-even", "## Assumptions", "### Prices"):
        assert heading in md, heading
    assert f"run {evaluated.id}" in md and "| Total per month |" in md
    assert "OpenAI pricing page" in md and "2024-07" in md  # prices carry source and date
    assert all(r in md for r in rec.reasons)
    html = memo_html(content, [cost_stack_chart(costs.project(costs.measured_usage("c"), costs.Projection(),
                                                              pricing.default_prices()), costs.APPROACH_NAMES)])
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html and "Monthly cost by component" in html
    assert "<script src=\"http" not in html  # self-contained: plotly.js embedded, opens offline


def test_memo_without_an_evaluation_says_it_rests_on_the_questionnaire(workbench_home):
    from workbench.decision import Answers
    from workbench.memo import memo_markdown

    close_all()
    rec, content = _memo("empty", Answers(strict_format=True, data_changes="rarely", queries_per_day=100_000,
                                          labelled_examples=2000), None)
    md = memo_markdown(content)
    assert "from the questionnaire alone" in md and "none yet" in md
    assert content["recommendation"] == "Fine-tuned"
    assert "unknown" in md  # nothing measured: generation costs are unknown, not $0
    close_all()


def test_one_stored_answer_has_one_price_on_every_page(evaluated):
    """Compare (history rows), Evaluate (its summary), Costs (every answer priced, and the monthly
    projection) and Decide (the evidence) all price through the workspace's table and hardware."""
    from workbench.decision import Evidence
    from workbench.eval_summary import summarize
    from workbench.history import answer_rows

    table = pricing.default_prices()
    pricing.find_price(table, "hardware", "small GPU")["speedup"] = 4.0
    pricing.save_prices("c", table)
    costs.save_projection("c", costs.Projection(hardware="small GPU", queries_per_day=1))
    p = pricing.pricing_for("c")
    assert p.rate.per_hour == 0.526 and p.rate.speedup == 4.0
    rows = evaluated.results_of("base")
    by_hand = [r.machine_s / 4.0 * 0.526 / 3600 for r in rows]
    one_run = Run(id="x", question=rows[0].question, modes=["base"], answers=[Answer.from_dict(rows[0].to_dict())])
    compare = answer_rows([one_run], p)[0]["cost_usd"]
    evaluate_ = summarize(evaluated, p)["base"]["cost_per_1k_usd"] / 1000
    costs_page = next(r["cost_usd"] for r in costs.usage_rows("c", p) if r["question"] == rows[0].question
                      and r["mode"] == "base")
    evidence = Evidence.from_run(evaluated, p)
    decide = evidence.cost_per_1k["prompt"] / 1000  # prompt-only is the base model here (no prompted run)
    assert compare == pytest.approx(by_hand[0]) and costs_page == pytest.approx(by_hand[0])
    assert evaluate_ == pytest.approx(sum(by_hand) / len(by_hand)) and decide == pytest.approx(evaluate_)
    # The monthly projection's generation line is the same per-answer figure times 30 days x 1 query.
    measured = costs.measured_usage("c")
    projected = next(c for c in costs.project(measured, costs.load_projection("c")[0], p.table)["prompt"]
                     if c.name == "Generation").usd
    assert projected == pytest.approx(30 * sum(by_hand) / len(by_hand))


def test_a_price_table_saved_before_speedups_keeps_its_local_costs(workbench_home):
    old = {"prices": {"api": [], "embedding": [], "hosting": [],
                      "hardware": [{"name": "laptop", "per_hour": 0.0, "as_of": "-", "source": "mine"},
                                   {"name": "my box", "per_hour": 1.0, "as_of": "-", "source": "mine"}]}}
    (workspace_dir("old") / pricing.PRICES_FILE).write_text(json.dumps(old))
    table = pricing.load_prices("old")
    assert pricing.hardware_rate(table, "laptop").speedup == 1.0
    assert pricing.hardware_rate(table, "my box").speedup is None  # the user's own row: not guessed
    assert pricing.pricing_for("old").rate.per_hour == 0.085  # the default hardware is back


def test_each_warning_in_the_memo_is_its_own_paragraph(workbench_home):
    """Consecutive quoted lines render as one paragraph: each "Note first" is followed by a blank line."""
    from workbench.decision import Answers
    from workbench.memo import memo_markdown

    close_all()
    _, content = _memo("notes", Answers(), None)
    md = memo_markdown({**content, "warnings": ["First thing.", "Second thing."]})
    assert "> **Note first:** First thing.\n\n> **Note first:** Second thing.\n" in md
    close_all()


def test_names_from_uploads_stay_text_in_the_memo(workbench_home):
    """The Decide page renders the Markdown memo: a document or test-set name cannot become a link, an
    emphasis, an HTML tag or a broken table there, and reads the same."""
    from markdown_it import MarkdownIt

    from workbench.decision import Answers
    from workbench.memo import memo_markdown

    close_all()
    _, content = _memo("names", Answers(), None)
    name = "[click](http://evil.example) *big* <b>x</b> $1 | 2$ `c`.md"
    content = {**content, "data": [("Documents indexed", f"1 ({name})"), ("Evaluation", name)],
               "warnings": [f"Only {name} was indexed."]}
    html = MarkdownIt().enable("table").render(memo_markdown(content))
    assert "<a " not in html and "<em>big" not in html and "<b>" not in html and "<code>" not in html
    assert "[click](http://evil.example) *big* &lt;b&gt;x&lt;/b&gt; $1 | 2$ `c`.md" in html.replace("\u200b", "")
    close_all()


def test_the_traffic_is_one_figure_for_costs_and_decide(workbench_home):
    """Queries per day typed on Costs is the questionnaire's, and the other way round: the advice, its memo
    and the Costs page project the same monthly cost."""
    import dataclasses

    from workbench.decision_store import load_answers, save_answers

    costs.save_projection("traffic", costs.Projection(queries_per_day=5000, docs_changed_per_month=3),
                          {"rag": {"tokens_in": 900}})
    answers = load_answers("traffic")
    assert answers.queries_per_day == 5000
    save_answers("traffic", dataclasses.replace(answers, queries_per_day=200))
    projection, overrides = costs.load_projection("traffic")
    assert projection.queries_per_day == 200 and projection.docs_changed_per_month == 3  # the rest kept
    assert overrides == {"rag": {"tokens_in": 900}} and load_answers("traffic").queries_per_day == 200
