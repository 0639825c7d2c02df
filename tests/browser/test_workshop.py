"""Workshop mode in real browsers: two attendees, each in a private workspace of their own, start
trainings at the same time and see their places in the queue; a third visitor cannot open theirs;
the facilitator, after the passphrase, sees both workspaces (by short label) and both jobs, and
cancels them."""

import json
import re
import time

from tests.browser.conftest import ARTIFACTS, Server
from tests.browser.helpers import assert_no_errors, shot, upload, wait_idle, workspace_in_link
from tests.conftest import ROOT


def test_two_trainings_queue_and_the_facilitator_sees_both(browser, tmp_path, monkeypatch):
    from workbench import workshop

    monkeypatch.setenv("WORKBENCH_WORKSHOP", "1")
    monkeypatch.setenv(workshop.ENV_PASSPHRASE_HASH, workshop.hash_passphrase("facilitate-me"))
    server = Server(tmp_path / "home")
    contexts = []
    try:
        pages, names = [], []
        for name in ("alice", "bob"):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(server.url)  # a new visitor: a private workspace of their own
            wait_idle(page)
            ws = workspace_in_link(page)
            assert workshop.is_private_name(ws), page.url
            names.append(ws)
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Fine-tune").click()
            wait_idle(page)
            page.get_by_text("Upload a file").click()
            wait_idle(page)
            upload(page, 0, [ROOT / "sample_data" / "training_pairs.jsonl"], "training_pairs.jsonl")
            page.get_by_text("Usable pairs").wait_for()
            wait_idle(page)
            page.get_by_label("Adapter name", exact=True).fill(f"{name}-adapter")
            # Long enough to be still running when the facilitator looks; the test cancels it.
            page.get_by_label("Epochs", exact=True).fill("3")
            pages.append(page)
        for page in pages:
            page.get_by_role("button", name="Start training", exact=True).click()
        pages[1].get_by_text("Waiting in the queue: position 1").wait_for()
        wait_idle(pages[1])
        assert_no_errors(pages[1])
        shot(pages[1], "workshop-1-queued")

        # A third visitor, with a link one digit away from alice's, opens nothing of hers: a fresh
        # workspace, a clear line, and Home lists only their own.
        context = browser.new_context(viewport={"width": 1280, "height": 1400})
        contexts.append(context)
        fac = context.new_page()
        fac.set_default_timeout(180_000)
        near = names[0][:-1] + ("0" if names[0][-1] != "0" else "1")
        fac.goto(f"{server.url}/?workspace={near}")
        wait_idle(fac)
        fac.get_by_text("That link does not open a workspace on this server").wait_for()
        own = workspace_in_link(fac, other_than=near)
        assert workshop.is_private_name(own) and own not in names + [near]
        body = fac.get_by_test_id("stMain").inner_text()
        assert all(workshop.short_name(n) not in body for n in names)
        shot(fac, "workshop-0-private")

        # The facilitator: a wrong passphrase is refused, the right one opens the page.
        fac.get_by_test_id("stSidebarNav").get_by_role("link", name="Facilitator").click()
        wait_idle(fac)
        fac.get_by_label("Facilitator passphrase").fill("wrong passphrase")
        fac.get_by_role("button", name="Open").click()
        fac.get_by_text("That passphrase is not the facilitator's").wait_for()
        fac.get_by_label("Facilitator passphrase").fill("facilitate-me")
        fac.get_by_role("button", name="Open").click()
        fac.get_by_role("heading", name="Leaderboard").wait_for()
        wait_idle(fac, 300_000)
        body = fac.get_by_test_id("stMain").inner_text()
        assert "2 job(s) queued or running" in body
        short = [workshop.short_name(n) for n in names]
        assert all(x in body for x in short) and "queued, position 1" in body
        assert all(n not in body for n in names)  # the private names (the links' secrets) are not shown
        assert_no_errors(fac)
        shot(fac, "workshop-2-facilitator")
        # Cancel both from the facilitator page: the queued one first, then the running one. The job
        # records the server writes say how each ended.
        fac.get_by_text(f"{short[1]} · train").wait_for()
        fac.get_by_role("button", name="Cancel").last.click()
        fac.get_by_text(re.compile(r"^1 job\(s\) queued or running")).wait_for(timeout=300_000)
        wait_idle(fac, 300_000)
        fac.get_by_role("button", name="Cancel").first.click()
        wait_idle(fac, 300_000)

        def statuses() -> dict:
            out = {}
            for who, name in zip(("alice", "bob"), names):
                for f in (tmp_path / "home" / "workspaces" / name / "jobs").glob("*.json"):
                    out[who] = json.loads(f.read_text())["status"]
            return out

        deadline = time.time() + 300  # a running training stops at its next step
        while time.time() < deadline and "running" in statuses().values():
            time.sleep(2)
        final = statuses()
        # Cancelled while queued; or, when Alice's training finished before the click and Bob's had just
        # started, at its next step (so wait for both, not only Alice's).
        assert final["bob"] == "cancelled"
        assert final["alice"] in {"cancelled", "done"}  # "done" only if it finished before the click
        assert_no_errors(fac)
    finally:
        for context in contexts:
            context.close()
        server.stop()
        (ARTIFACTS / f"server-{server.port}.log").unlink(missing_ok=True)
