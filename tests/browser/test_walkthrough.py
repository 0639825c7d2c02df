"""A new user's walk-through in a real browser; it grows as pages land. Screenshots of each step
are saved under test-artifacts/browser/."""

from tests.browser.helpers import assert_no_errors, shot, wait_idle


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
    page.get_by_role("button", name="Create and open").click()
    wait_idle(page)
    page.get_by_test_id("stSidebar").get_by_text("walkthrough").wait_for()
    assert_no_errors(page)

    # 3. A bad workspace name gets a clear message, and the current workspace is kept.
    page.get_by_label("New workspace name", exact=True).fill("../escape")
    page.get_by_role("button", name="Create and open").click()
    wait_idle(page)
    page.get_by_text("Expected a workspace name").wait_for()
    page.get_by_test_id("stSidebar").get_by_text("walkthrough").wait_for()
    shot(page, "02-workspace-error")

    # 4. Ask the real local model; the answer streams in with its timings.
    page.get_by_label("Question", exact=True).fill("What is a return window?")
    page.get_by_role("button", name="Ask").click()
    page.get_by_text("Time to first token").wait_for(timeout=180_000)
    wait_idle(page)
    assert_no_errors(page)
    metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
    assert any(m.endswith("ms") for m in metrics) and any("tokens/s" in m for m in metrics)
    shot(page, "03-base-answer")
