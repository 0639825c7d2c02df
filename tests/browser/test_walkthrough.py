"""A new user's walk-through in a real browser; it grows as pages land. Screenshots of each step
are saved under test-artifacts/browser/."""

import re

import pytest

from tests.browser.helpers import assert_no_errors, at_widths, choose, shot, tall, upload, wait_idle
from tests.conftest import ROOT


# Five approaches answer each Compare question and the three evaluation questions on 2 CPU cores, with
# answers capped at 64 tokens: the whole walk takes longer than the suite's 15-minute default.
@pytest.mark.timeout(1800)
def test_new_user_walkthrough(page, server):
    # 1. Home: what the workbench is, the machine check, the workspace picker.
    page.goto(server.url)
    wait_idle(page)
    page.get_by_role("heading", name="RAG-vs-Fine-tune Workbench").wait_for()
    page.get_by_text("installed and found offline").wait_for()
    assert_no_errors(page)
    shot(page, "01-home")

    # 2. Create a personal workspace; the sidebar follows.
    page.get_by_label("New workspace name", exact=True).fill("walkthrough")
    page.get_by_role("button", name="Create and open", exact=True).click()
    wait_idle(page)
    page.get_by_test_id("stSidebar").get_by_text("walkthrough").wait_for()
    assert_no_errors(page)

    # 3. A bad workspace name gets a clear message, and the current workspace is kept.
    page.get_by_label("New workspace name", exact=True).fill("../escape")
    page.get_by_role("button", name="Create and open", exact=True).click()
    wait_idle(page)
    page.get_by_text("Expected a workspace name").wait_for()
    page.get_by_test_id("stSidebar").get_by_text("walkthrough").wait_for()
    shot(page, "02-workspace-error")

    # 4. Ask the real local model; the answer streams in with its timings.
    page.get_by_label("Question", exact=True).fill("What is a return window?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_text("Time to first token").wait_for(timeout=180_000)
    wait_idle(page)
    assert_no_errors(page)
    metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
    speed = page.get_by_test_id("stMetric").filter(has_text="Decode speed (tokens/s)")
    assert any(m.endswith("ms") for m in metrics) and float(speed.get_by_test_id("stMetricValue").inner_text()) > 0
    shot(page, "03-base-answer")

    # 5. Documents on a brand-new workspace: an empty state that says what to do.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Documents").click()
    wait_idle(page)
    page.get_by_text("No documents yet").wait_for()
    assert_no_errors(page)
    shot(page, "04-documents-empty")

    # 6. Load the sample documents: the index builds with progress, the table lists them.
    page.get_by_role("button", name="Load the sample documents", exact=True).click()
    page.get_by_role("heading", name=re.compile(r"^12 documents, \d+ chunks")).wait_for(timeout=180_000)
    wait_idle(page)
    assert_no_errors(page)
    shot(page, "05-documents-indexed")

    # 7. A bad upload is reported by name while the good file in the same upload is indexed.
    bad = server.home / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    good = server.home / "extra-note.md"
    good.write_text("# Extra note\n\nThe Deventer showroom has free parking for 12 cars.\n")
    upload(page, 0, [bad, good], "extra-note.md")
    page.get_by_role("button", name="Add to index", exact=True).click()
    page.get_by_text("broken.pdf: expected a readable PDF").wait_for(timeout=120_000)
    page.get_by_role("heading", name=re.compile(r"^13 documents, \d+ chunks")).wait_for()
    wait_idle(page)
    shot(page, "06-documents-bad-upload")

    # 8. Replace the returns policy with its new version: re-indexed in seconds.
    choose(page, "Inspect a document", "returns-policy.md")
    page.get_by_text("Effective from: 1 March 2024").first.wait_for()
    updated = ROOT / "sample_data" / "updated" / "returns-policy.md"
    upload(page, 1, [updated], "returns-policy.md")
    page.get_by_role("button", name="Replace and re-index", exact=True).click()
    page.get_by_text("Re-indexed returns-policy.md in").wait_for(timeout=120_000)
    page.get_by_text("within **30 days**").first.wait_for()
    wait_idle(page)
    shot(page, "07-documents-replaced")

    # 9. The search playground returns the new text, with scores and stage timings.
    page.get_by_role("tab", name="Search playground").click()
    page.get_by_label("Question", exact=True).fill("How many days do I have to return a product?")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("hits in").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_errors(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "30 days" in body and "rank" in body and "rerank" in body
    shot(page, "08-search-playground")
    tall(page, "09-search-hits")

    # 10. Fine-tune: upload the sample pairs, see them validated, train a tiny adapter with a live chart.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Fine-tune").click()
    wait_idle(page)
    page.get_by_text("No adapters yet").wait_for()
    page.get_by_text("Upload a file").click()
    wait_idle(page)
    upload(page, 0, [ROOT / "sample_data" / "training_pairs.jsonl"], "training_pairs.jsonl")
    page.get_by_text("Usable pairs").wait_for()
    wait_idle(page)
    assert "80" in page.get_by_test_id("stMetricValue").all_inner_texts()
    page.get_by_label("Adapter name", exact=True).fill("walkthrough-adapter")
    page.get_by_label("Epochs", exact=True).fill("0.5")
    page.get_by_label("Batch size", exact=True).fill("8")
    page.get_by_role("button", name="Start training", exact=True).click()
    page.get_by_text("Training and validation loss").first.wait_for(timeout=180_000)
    shot(page, "10-finetune-training")
    page.get_by_text("Saved adapter").wait_for(timeout=300_000)
    wait_idle(page)
    assert_no_errors(page)
    tall(page, "11-finetune-adapter")

    # 11. Before/after on the adapter's held-out prompts.
    page.get_by_role("button", name="Compare base and adapter", exact=True).click()
    page.get_by_text("Follow the format: local:smollm2-135m").wait_for(timeout=300_000)  # the base it was trained on
    wait_idle(page)
    assert_no_errors(page)
    tall(page, "12-before-after")

    # 12. Compare five approaches on a test-set question, side by side, with the expected answer, each answer's
    # verdict, sources, prompts and timings. Answers are capped at 64 tokens to keep the walk short.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare").click()
    wait_idle(page)
    q01 = "How many days do I have to return something I bought from you?"
    page.get_by_label("Question", exact=True).fill(q01)
    page.get_by_test_id("stSlider").filter(has_text="Maximum answer length").get_by_role("slider").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # 96 -> 64
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Latency by stage, this question").wait_for(timeout=300_000)
    wait_idle(page)
    assert_no_errors(page)
    body = page.get_by_test_id("stMain").inner_text()
    for label in ("Base", "Prompted", "RAG", "Fine-tuned", "Hybrid", "Sources (5)", "Prompt sent", "tokens/s",
                  "Prompts (defaults)", "Expected answer (test item q01", "45 days", "SmolLM2-135M-Instruct"):
        assert label in body, label
    # Every answer has a verdict; retrieving approaches say whether the answer's passage was retrieved.
    assert sum(body.count(v) for v in ("Correct", "Partial", "Wrong", "Stale", "Refused", "Unscored")) >= 5
    assert "Retrieval found the answer" in body or "The model missed it" in body or "Retrieval missed" in body
    # The adapter writes "Sources: ..." from memory: flagged as invented.
    assert "Invented source" in body and "cited from memory" in body, body
    tall(page, "13-compare")

    # 13. One more question: the charts below grow with every answer.
    q = "What is the restocking fee?"
    page.get_by_label("Question", exact=True).fill(q)
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text(f"Question: {q}", exact=True).wait_for(timeout=300_000)
    wait_idle(page)
    assert_no_errors(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "History (2 questions)" in body and "Expected answer" not in body  # not from a test set
    for chart in ("Latency per answer", "Cumulative cost", "Tokens per answer"):
        assert page.get_by_text(chart).count() >= 1, chart
    widths = at_widths(page, "14-compare-charts", height=3600)
    assert not any(widths.values()), widths

    # 14. Blind test: letters only, vote, then the approaches are revealed and tallied.
    page.get_by_label("Question", exact=True).fill(q01)
    page.get_by_text("Blind test", exact=True).click()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Which answer is best?").wait_for(timeout=300_000)
    wait_idle(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "the format is hidden" in body and "Summary:" not in body and "Sources:" not in body
    shot(page, "15-blind-vote")
    page.get_by_text("Answer B", exact=True).last.click()
    page.get_by_role("button", name="Vote and reveal", exact=True).click()
    page.get_by_text("your pick").first.wait_for()
    wait_idle(page)
    assert_no_errors(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "Blind votes (1" in body and "Win rates appear from 5 votes per approach on (1 so far" in body
    tall(page, "16-blind-revealed")

    # 15. Semantic cache: the same question again comes back instantly, marked as a cache hit.
    page.get_by_text("Blind test", exact=True).click()
    page.get_by_text("Semantic cache", exact=True).click()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Cache hit: reused the answer").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_errors(page)
    tall(page, "17-cache-hit", height=3600)

    # 16. Evaluate a small slice of the sample set through the four approaches.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Evaluate").click()
    wait_idle(page)
    page.get_by_text("No evaluation runs yet").wait_for()
    page.get_by_label("Questions to run (from the top)", exact=True).fill("3")
    page.keyboard.press("Tab")
    page.get_by_test_id("stSlider").filter(has_text="Maximum answer length").get_by_role("slider").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # 96 -> 64
    page.get_by_role("button", name="Run evaluation", exact=True).click()
    page.get_by_text("Evaluation finished").wait_for(timeout=600_000)
    wait_idle(page)
    page.get_by_text("Quality per approach").first.wait_for()
    assert_no_errors(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "Question 3 of 3" in body and "Pareto front" in body and "Token F1" in body
    assert "Declined unanswerable" in body and "Wilson interval" in body
    assert "not enough evidence yet" in body and "SmolLM2-135M-Instruct" in body
    widths = at_widths(page, "18-evaluate-results", height=4200)
    assert not any(widths.values()), widths

    # 17. A restart keeps the history.
    assert "workspace=walkthrough" in page.url  # the workspace travels in the link
    server.restart()
    page.goto(f"{server.url}/compare?workspace=walkthrough")
    page.get_by_text("History (4 questions)").wait_for(timeout=120_000)
    wait_idle(page)
    assert "walkthrough" in page.get_by_test_id("stSidebar").inner_text()
    assert_no_errors(page)
    tall(page, "19-history-after-restart")

    # 18. Costs: a projection from the measured tokens and seconds; the break-even follows the traffic.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Costs").click()
    wait_idle(page)
    page.get_by_text("3. Monthly projection").wait_for()
    body = page.get_by_test_id("stMain").inner_text()
    assert "From evaluation run" in body and "Monthly cost by component" in body
    page.get_by_text(re.compile(r"cheaper.*at 1,000 queries/day")).first.wait_for()  # "... of the two at" or "(at"
    page.get_by_label("Queries per day", exact=True).fill("100000")
    page.keyboard.press("Tab")
    wait_idle(page)
    page.get_by_text("Monthly cost vs change rate (100,000 queries/day)").wait_for()
    page.get_by_text(re.compile(r"cheaper.*at 100,000 queries/day")).first.wait_for()
    assert_no_errors(page)
    widths = at_widths(page, "20-costs", height=4400)
    assert not any(widths.values()), widths

    # 19. Decide: the questionnaire plus the measured evidence, a recommendation with reasons, the memo.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Decide").click()
    wait_idle(page)
    page.get_by_text("2. What you measured").wait_for()
    # No recommendation before the questionnaire is answered.
    page.get_by_text("recommends nothing before it knows your situation").wait_for()
    assert page.get_by_test_id("stAlertContentSuccess").count() == 0
    page.get_by_text("Answers must cite their sources", exact=True).click()
    page.get_by_role("button", name="Recommend", exact=True).click()
    wait_idle(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "Answers must cite their sources" in body and "Ruled out by your hard limits" in body
    assert "cannot cite its sources" in body
    # A latency limit no approach meets on this machine vetoes them with the measured figure.
    page.get_by_label("Latency limit for a full answer (seconds, 0 = none)", exact=True).fill("0.5")
    page.get_by_role("button", name="Recommend", exact=True).click()
    wait_idle(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "over your limit of 0.5 s" in body and "No approach meets all of your hard limits" in body
    assert_no_errors(page)
    widths = at_widths(page, "21-decide", height=2600)
    assert not any(widths.values()), widths
    # Back to a limit the measurements allow, for the memo.
    page.get_by_label("Latency limit for a full answer (seconds, 0 = none)", exact=True).fill("0")
    page.get_by_role("button", name="Recommend", exact=True).click()
    wait_idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download memo (HTML, with charts)").click()
    memo = ROOT / "test-artifacts" / "browser" / "decision-memo.html"
    info.value.save_as(str(memo))
    html = memo.read_text()
    assert "Decision memo" in html and "Monthly cost projection" in html and "Recommendation" in html

    # 20. The memo opens in a browser, offline, with its charts drawn.
    page.goto(memo.as_uri())
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 3
    page.wait_for_timeout(1000)
    shot(page, "22-memo")

    # 21. A new workspace from the shared sample, in one click.
    page.goto(server.url)
    wait_idle(page)
    page.get_by_role("button", name="Copy the sample", exact=True).click()
    page.get_by_text("holds the sample documents, indexed").wait_for(timeout=300_000)
    wait_idle(page)
    assert "sample-" in page.get_by_test_id("stSidebar").inner_text()
    assert_no_errors(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Documents").click()
    wait_idle(page)
    body = page.get_by_test_id("stMain").inner_text()
    assert "No documents yet" not in body and "company-overview.txt" in body
    shot(page, "23-sample-copied")
