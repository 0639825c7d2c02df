"""The background job runner: queue positions, cancel, failures, interrupted jobs after a restart."""

import json
import threading
import time

from workbench import jobs
from workbench.errors import DataError
from workbench.progress import ProgressEvent


def _wait(job, statuses, timeout=10):
    deadline = time.time() + timeout
    while job.status not in statuses and time.time() < deadline:
        time.sleep(0.02)
    return job.status


def test_queue_positions_cancel_and_results(workbench_home):
    runner = jobs.JobRunner(concurrency=1)
    gate = threading.Event()

    def slow(sink, cancel):
        sink(ProgressEvent("work", 1, 2, "half"))
        gate.wait(5)
        return 42

    first = runner.submit("train", "default", "first", slow)
    second = runner.submit("train", "default", "second", lambda sink, cancel: "two")
    third = runner.submit("train", "default", "third", lambda sink, cancel: "three")
    assert _wait(first, {jobs.RUNNING}) == jobs.RUNNING
    assert runner.position(first.id) == 0 and runner.position(second.id) == 1 and runner.position(third.id) == 2
    runner.cancel(second.id)
    assert second.status == jobs.CANCELLED and runner.position(third.id) == 1
    gate.set()
    assert _wait(third, {jobs.DONE}) == jobs.DONE
    assert first.result == 42 and first.events[0].message == "half" and second.result is None


def test_cancel_running_job_and_failures(workbench_home):
    runner = jobs.JobRunner(concurrency=1)

    def cooperative(sink, cancel):
        while not cancel.is_set():
            time.sleep(0.01)
        return None

    job = runner.submit("train", "ws", "loop", cooperative)
    _wait(job, {jobs.RUNNING})
    runner.cancel(job.id)
    assert _wait(job, {jobs.CANCELLED}) == jobs.CANCELLED

    def bad(sink, cancel):
        raise DataError("Expected pairs, got none.")

    failed = runner.submit("train", "ws", "bad", bad)
    assert _wait(failed, {jobs.FAILED}) == jobs.FAILED and failed.error == "Expected pairs, got none."

    def bug(sink, cancel):
        raise ZeroDivisionError("x")

    crashed = runner.submit("train", "ws", "bug", bug)
    assert _wait(crashed, {jobs.FAILED}) == jobs.FAILED and "ZeroDivisionError" in crashed.error
    # the worker survived the bug
    ok = runner.submit("train", "ws", "after", lambda sink, cancel: 1)
    assert _wait(ok, {jobs.DONE}) == jobs.DONE


def test_job_running_when_the_server_stopped_is_reported_interrupted(workbench_home, monkeypatch):
    folder = workbench_home / "workspaces" / "ws" / "jobs"
    folder.mkdir(parents=True)
    (folder / "abc.json").write_text(json.dumps({"id": "abc", "kind": "train", "workspace": "ws", "label": "x",
                                                 "status": "running", "error": None, "created_at": 1.0,
                                                 "started_at": 1.0, "finished_at": None}))
    monkeypatch.setattr(jobs, "_runner", jobs.JobRunner(1))
    history = jobs.job_history("ws")
    assert history[0]["status"] == jobs.INTERRUPTED and "stopped" in history[0]["error"]
    assert json.loads((folder / "abc.json").read_text())["status"] == jobs.INTERRUPTED


def test_one_workspace_cannot_fill_a_shared_queue(workbench_home, monkeypatch):
    """With a per-workspace limit (workshop mode's runner), a third job of one workspace is refused with the
    limit's name; other workspaces still queue, and a finished or cancelled job makes room."""
    import pytest

    from workbench.limits import LimitError
    from workbench.workshop import ENV_WORKSHOP

    runner = jobs.JobRunner(concurrency=1, per_workspace=2)
    gate = threading.Event()
    first = runner.submit("evaluate", "bob", "first", lambda sink, cancel: gate.wait(5))
    second = runner.submit("evaluate", "bob", "second", lambda sink, cancel: None)
    with pytest.raises(LimitError, match="already has 2 jobs waiting or running") as err:
        runner.submit("evaluate", "bob", "third", lambda sink, cancel: None)
    assert "WORKBENCH_MAX_JOBS_PER_WORKSPACE" in err.value.fix
    other = runner.submit("train", "alice", "hers", lambda sink, cancel: None)
    runner.cancel(second.id)
    runner.submit("evaluate", "bob", "third, now", lambda sink, cancel: None)
    gate.set()
    assert _wait(other, {jobs.DONE}) == jobs.DONE and _wait(first, {jobs.DONE}) == jobs.DONE
    # The process-wide runner has the limit in workshop mode only.
    monkeypatch.setattr(jobs, "_runner", None)
    monkeypatch.setenv(ENV_WORKSHOP, "1")
    assert jobs.get_runner().per_workspace == 2
    monkeypatch.setattr(jobs, "_index_runner", None)
    assert jobs.get_index_runner().per_workspace == 2  # the upload lane too
    monkeypatch.setattr(jobs, "_index_runner", None)
    monkeypatch.setattr(jobs, "_runner", None)
    monkeypatch.delenv(ENV_WORKSHOP)
    assert jobs.get_runner().per_workspace is None
    monkeypatch.setattr(jobs, "_runner", None)
