"""Workshop mode: workspaces kept apart, the shared sample cloned, the facilitator's passphrase kept
as a hash, status/leaderboard/reset/delete/export across workspaces, one model copy per process."""

import io
import json
import zipfile

import pytest

from tests.fakes import EchoGenerator
from workbench import paths, workshop, workspaces
from workbench.documents import parse_uploads
from workbench.errors import ConfigError, DataError
from workbench.eval_runs import evaluate
from workbench.evaluation import TestItem
from workbench.history import list_runs, run_and_record
from workbench.index import close_all, open_index
from workbench.strategies import ComparisonSpec

ITEMS = [TestItem("q1", "How many days do I have to return a product?", "Within 45 days of delivery."),
         TestItem("q2", "What was the revenue last year?", "I don't know.", None, answerable=False)]


@pytest.fixture(autouse=True)
def _close():
    close_all()
    yield
    close_all()


def test_passphrase_is_stored_as_a_salted_hash_only(workbench_home):
    assert not workshop.facilitator_enabled()
    workshop.set_passphrase("correct horse battery")
    stored = (paths.home() / workshop.FACILITATOR_FILE).read_text()
    assert "correct horse" not in stored and json.loads(stored)["hash"].startswith("scrypt$")
    assert workshop.check_facilitator("correct horse battery")
    assert not workshop.check_facilitator("wrong horse battery")
    assert workshop.hash_passphrase("same phrase!") != workshop.hash_passphrase("same phrase!")  # salted
    with pytest.raises(ConfigError, match="at least 8 characters"):
        workshop.set_passphrase("short")


def test_passphrase_hash_from_the_environment(workbench_home, monkeypatch):
    monkeypatch.setenv(workshop.ENV_PASSPHRASE_HASH, workshop.hash_passphrase("from the env"))
    assert workshop.facilitator_enabled() and workshop.check_facilitator("from the env")


def test_fresh_workspace_names_are_new_and_valid(workbench_home):
    names = {workshop.fresh_workspace_name() for _ in range(20)}
    assert len(names) == 20
    assert all(paths.validate_workspace_name(n) == n and n.startswith("guest-") for n in names)


def test_workshop_workspaces_are_private_links(workbench_home, monkeypatch):
    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    names = {workshop.fresh_workspace_name() for _ in range(20)}
    assert len(names) == 20 and all(workshop.is_private_name(n) for n in names)
    mine = workshop.fresh_workspace_name("team_a")
    assert mine.startswith("team_a-") and len(mine.split("-")[1]) == 24  # 96 random bits
    # A visitor opens only an existing private workspace from a link; never a guessable name.
    assert workshop.may_open(mine)
    assert not workshop.may_open("default") and not workshop.may_open("team-a")
    assert not workshop.may_open(mine[:-1] + ("0" if mine[-1] != "0" else "1"))  # the same shape, not there
    assert not workshop.may_open("../etc") and not workshop.may_open(mine + "\n")
    assert workshop.may_open("default", facilitator=True)
    # What tables, memos and file names show: the label and 4 digits, never the link's secret.
    assert workshop.short_name(mine) == f"team_a-{mine.split('-')[1][:4]}…"
    assert workshop.short_name("default") == "default"
    with pytest.raises(ConfigError, match="Expected a workspace label"):
        workshop.fresh_workspace_name("Bad Label")
    # Outside workshop mode: one person on their own machine, any valid name opens.
    monkeypatch.delenv(workshop.ENV_WORKSHOP)
    assert workshop.may_open("team-a") and workshop.fresh_workspace_name().startswith("guest-")


def test_new_workspaces_are_limited_per_hour(workbench_home, monkeypatch):
    import os
    import time

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    monkeypatch.setenv(workshop.ENV_MAX_NEW, "3")
    made = [workshop.fresh_workspace_name() for _ in range(3)]
    for name in made:
        (paths.workspace_dir(name) / "prices.json").write_text("{}")  # in use
    with pytest.raises(workshop.TooManyWorkspaces, match="3 new workspaces in the last hour") as info:
        workshop.fresh_workspace_name()
    assert workshop.ENV_MAX_NEW in info.value.fix
    assert len(list(paths.workspaces_dir().iterdir())) == 3  # the refused one made no folder
    # Reloading a page many times cannot lock others out: when the limit is reached, workspaces left
    # empty for over a minute make room.
    (paths.workspace_dir(made[0]) / "prices.json").unlink()
    old = time.time() - 2 * workshop.CROWDED_EMPTY_AGE_S
    os.utime(paths.workspace_dir(made[0]), (old, old))
    fourth = workshop.fresh_workspace_name()
    assert not paths.workspace_dir(made[0], create=False).exists() and paths.workspace_dir(fourth).is_dir()
    with pytest.raises(workshop.TooManyWorkspaces):  # the others are in use
        workshop.fresh_workspace_name()
    for name in list(workshop._new_times):  # an hour later
        workshop._new_times[name] -= workshop.NEW_WINDOW_S + 1
    workshop.fresh_workspace_name()
    monkeypatch.setenv(workshop.ENV_MAX_NEW, "many")
    with pytest.raises(ConfigError, match="whole number"):
        workshop.fresh_workspace_name()


def test_cleanup_removes_only_old_empty_private_workspaces(workbench_home, monkeypatch):
    import os
    import time

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    empty_old, empty_new, used_old = (workshop.fresh_workspace_name() for _ in range(3))
    named = paths.workspace_dir("team-a")  # a named workspace (made outside workshop mode) is never removed
    (paths.workspace_dir(empty_old) / "history").mkdir()  # folders only: still empty
    (paths.workspace_dir(used_old) / "prices.json").write_text("{}")
    old = time.time() - workshop.EMPTY_MAX_AGE_S - 60
    for folder in (paths.workspace_dir(empty_old), paths.workspace_dir(empty_old) / "history",
                   paths.workspace_dir(used_old), paths.workspace_dir(used_old) / "prices.json", named):
        os.utime(folder, (old, old))
    assert workshop.cleanup_empty() == [empty_old]
    assert {p.name for p in paths.workspaces_dir().iterdir()} == {empty_new, used_old, "team-a"}


def test_a_workspace_that_pages_only_looked_at_counts_as_empty(workbench_home, monkeypatch):
    """Opening Documents, Compare or Costs writes an index with no document and the projection inputs; that is
    not work, so such a workspace still makes room. One with a document indexed is kept."""
    import os
    import time

    from workbench.documents import parse_uploads
    from workbench.index import open_index

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    looked, used = (workshop.fresh_workspace_name() for _ in range(2))
    for name in (looked, used):
        open_index(name)  # what a page visit does
        (paths.workspace_dir(name) / "projection.json").write_text("{}")
    open_index(used).add_documents(parse_uploads([("own.md", b"# Own\n\nA day costs 30 pounds.")])[0])
    assert any(f.is_file() for f in (paths.workspace_dir(looked) / "index").rglob("*"))
    old = time.time() - workshop.EMPTY_MAX_AGE_S - 60
    for name in (looked, used):
        for f in [paths.workspace_dir(name), *paths.workspace_dir(name).rglob("*")]:
            os.utime(f, (old, old))
    assert workshop.cleanup_empty() == [looked]
    assert open_index(used).documents()


def test_nothing_leaks_between_workspaces(workbench_home):
    from workbench import samples

    a = open_index("alice")
    a.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "faq.md"])[0])
    run_and_record("Do you sell gift cards?", ComparisonSpec(("base",), EchoGenerator()), workspace="alice")
    assert [d["name"] for d in open_index("alice").documents()] == ["faq.md"]
    assert open_index("bob").documents() == [] and list_runs("bob") == []
    assert len(list_runs("alice")) == 1
    status = {s["workspace"]: s for s in map(workspaces.workspace_status, ["alice", "bob"])}
    assert status["alice"]["documents"] == 1 and status["alice"]["questions"] == 1
    assert status["bob"]["documents"] == 0 and status["bob"]["questions"] == 0


@pytest.mark.slow
def test_the_sample_is_built_once_and_cloned_into_a_new_workspace(workbench_home):
    workspaces.clone_sample("mine")
    docs = open_index("mine").documents()
    assert len(docs) >= 5
    built = (workspaces.sample_folder() / "index" / "manifest.json").stat().st_mtime
    workspaces.clone_sample("yours")  # the second clone copies, it does not rebuild
    assert (workspaces.sample_folder() / "index" / "manifest.json").stat().st_mtime == built
    hits = open_index("yours").documents()
    assert [d["name"] for d in hits] == [d["name"] for d in docs]
    # The sample's training pairs come along: the Prompted approach takes its examples from them.
    from workbench.prompts import example_pool

    pool = example_pool("yours", None, embed=None)
    assert pool is not None and len(pool.pairs) == 80
    # Each clone is its own: removing a document from one leaves the other and the sample alone.
    open_index("mine").remove_document(docs[0]["name"])
    assert len(open_index("mine").documents()) == len(docs) - 1
    assert len(open_index("yours").documents()) == len(docs)
    with pytest.raises(DataError, match="already holds work"):
        workspaces.clone_sample("mine")
    assert "sample" not in paths.list_workspaces()  # the shared sample cannot be opened for writing


def test_leaderboard_reset_delete_and_export(workbench_home):
    for name in ("team-a", "team-b"):
        evaluate(ITEMS, ComparisonSpec(("base",), EchoGenerator()), workspace=name, testset_name="mini")
    run_and_record("Do you sell gift cards?", ComparisonSpec(("base",), EchoGenerator()), workspace="team-a")
    board = workspaces.leaderboard()
    assert {r["workspace"] for r in board} == {"team-a", "team-b"} and all(r["approach"] == "Base" for r in board)
    data = zipfile.ZipFile(io.BytesIO(workspaces.export_all()))
    names = data.namelist()
    assert "leaderboard.csv" in names and "leaderboard.json" in names
    assert any(n.startswith("team-a/history/") for n in names) and any(n.startswith("team-b/evaluations/") for n in names)
    assert not any("/index/" in n for n in names)
    assert not any(n.startswith("default/") for n in names)
    statuses = [workspaces.workspace_status(n) for n in paths.list_workspaces(existing=True)]
    assert [s["workspace"] for s in statuses] == ["team-a", "team-b"]
    assert not paths.workspace_dir(create=False).exists()  # the facilitator's view makes no "default" folder
    # A private workspace's full name (its link's secret) is in no folder name and no record of the export.
    private = "heron-" + "3f2a" + "0" * 20
    evaluate(ITEMS, ComparisonSpec(("base",), EchoGenerator()), workspace=private, testset_name="mini")
    (paths.workspace_dir(private) / "projection.json").write_text(json.dumps({"workspace": private}))
    data = zipfile.ZipFile(io.BytesIO(workspaces.export_all()))
    assert any(n.startswith("heron-3f2a/evaluations/") for n in data.namelist())
    assert not any(private in n or private.encode() in data.read(n) for n in data.namelist())
    workspaces.delete_workspace(private)
    workspaces.reset_workspace("team-a")
    assert list_runs("team-a") == [] and "team-a" in paths.list_workspaces()
    workspaces.delete_workspace("team-b")
    assert "team-b" not in paths.list_workspaces()
    assert {r["workspace"] for r in workspaces.leaderboard()} == set()


def test_a_workspace_with_a_running_job_is_not_reset(workbench_home, monkeypatch):
    import threading

    from workbench import jobs

    runner = jobs.JobRunner(1)
    monkeypatch.setattr(jobs, "_runner", runner, raising=False)
    monkeypatch.setattr(jobs, "get_runner", lambda: runner)
    release = threading.Event()
    job = runner.submit("evaluation", "busy", "waits", lambda progress, cancel: release.wait(5))
    with pytest.raises(DataError, match="job\\(s\\) queued or running"):
        workspaces.reset_workspace("busy")
    release.set()
    runner.cancel(job.id)


def test_memory_report_counts_model_copies_on_the_heap(workbench_home):
    from workbench import models

    models.get_embedder("local:all-minilm-l6-v2")
    before = workspaces.memory_report()
    assert before["rss_mb"] > 50 and before["peak_rss_mb"] >= before["rss_mb"]
    assert before["model_copies"] >= 1
    assert any(m["kind"] == "embedder" and m["weights_mb"] > 10 for m in before["models"])
    # Many sessions asking for the model, and indexes in several workspaces, add no copy.
    for name in ("w1", "w2", "w3"):
        models.get_embedder("local:all-minilm-l6-v2")
        open_index(name).documents()
    assert workspaces.memory_report()["copies"] == before["copies"]


def test_model_copy_count_is_reused_for_a_while_but_not_across_a_registry_change(monkeypatch):
    from workbench import models

    calls = []
    monkeypatch.setattr(models, "_count_model_copies", lambda: calls.append(1) or {"m": 1})
    monkeypatch.setattr(models, "_copies_cache", {})
    keys = [("generator", "a")]
    monkeypatch.setattr(models, "loaded_models", lambda: list(keys))
    assert models.live_model_copies(max_age_s=30) == {"m": 1}
    assert models.live_model_copies(max_age_s=30) == {"m": 1}
    assert len(calls) == 1  # many page views, one heap walk
    keys.append(("embedder", "b"))
    models.live_model_copies(max_age_s=30)
    assert len(calls) == 2  # a model loaded since: counted again
    models.live_model_copies()
    assert len(calls) == 3  # no age given: always counted now


def test_passphrase_guessing_is_limited_per_session_and_for_the_server(workbench_home, monkeypatch):
    monkeypatch.setattr(workshop, "_wrong_guesses", [])
    workshop.set_passphrase("correct horse battery")
    t, attacker, facilitator = 1000.0, [], []
    for i in range(workshop.MAX_WRONG_GUESSES):
        assert not workshop.check_facilitator(f"guess {i}", now=t + i, session_tries=attacker)
    # The guessing session is locked out, the right passphrase included, until the window has passed ...
    with pytest.raises(workshop.TooManyGuesses) as info:
        workshop.check_facilitator("correct horse battery", now=t + 10, session_tries=attacker)
    assert 0 < info.value.wait_s <= workshop.GUESS_WINDOW_S
    # ... but one attendee's guesses do not lock the facilitator out of another session.
    assert workshop.check_facilitator("correct horse battery", now=t + 10, session_tries=facilitator)
    assert workshop.check_facilitator("correct horse battery", now=t + workshop.GUESS_WINDOW_S + 5,
                                      session_tries=attacker)
    # Many sessions guessing at once hit the server's limit.
    for i in range(workshop.SERVER_WRONG_GUESSES):
        try:
            workshop.check_facilitator(f"g{i}", now=t + 100, session_tries=[])
        except workshop.TooManyGuesses:
            break
    with pytest.raises(workshop.TooManyGuesses):
        workshop.check_facilitator("correct horse battery", now=t + 101, session_tries=[])


def test_a_private_workspace_name_never_reaches_chroma(workbench_home, monkeypatch):
    """A shared Chroma server lists its collections to anyone who can reach it: a private workspace's
    collection is named by a digest, never by the name that is its link's secret."""
    from workbench.index import collection_base

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    name = workshop.fresh_workspace_name()
    index = open_index(name)
    assert name not in index.collection_name and name.split("-")[1] not in index.collection_name
    assert index.collection_name == collection_base(name) and collection_base("team-a") == "wb-team-a"


def test_workshop_mode_closes_the_data_folder_to_other_accounts(workbench_home, monkeypatch):
    import os
    import stat

    from workbench.documents import parse_uploads
    from workbench.index import open_index

    previous = os.umask(0o022)
    monkeypatch.setattr(workshop, "_protected", False)
    try:
        workshop.protect_data_folder()
        for folder in (paths.home(), paths.workspaces_dir()):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        name = workshop.fresh_workspace_name()
        open_index(name).add_documents(parse_uploads([("own.md", b"# Own\n\nSecret 30 pounds.")])[0])
        made = [f for f in paths.workspace_dir(name).rglob("*")]
        assert made and all(stat.S_IMODE(f.stat().st_mode) & 0o077 == 0 for f in made)  # Chroma's files too
    finally:
        os.umask(previous)


def test_the_sample_builds_after_an_interrupted_first_build(workbench_home):
    """A build stopped halfway (a browser gone, an error) must not leave an open index handle that makes the
    next build fail with a read-only database."""
    from workbench.index import open_index

    class Gone(Exception):
        pass

    seen = []

    def stop_after_first_batch(event):
        seen.append(event)
        if event.stage == "embed" and len(seen) > 2:
            raise Gone()

    with pytest.raises(Gone):
        workspaces.ensure_sample(stop_after_first_batch)
    assert not (workspaces.sample_folder() / ".complete").exists()
    workspaces.clone_sample("after")
    assert len(open_index("after").documents()) >= 5
