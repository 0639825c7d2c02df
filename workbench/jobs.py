"""Background jobs (training, evaluation): a queue, worker threads, events, cancel.

Long work runs here, outside the Streamlit script, so a click in the browser never kills it. A page
submits a job and polls it. One runner per process; ``WORKBENCH_MAX_JOBS`` (default 1) jobs run at
once and the rest wait in order. Each job's status is also written to ``workspaces/NAME/jobs/`` so
that after a restart a job that was running is reported as interrupted, never as done.

    job = get_runner().submit("train", "default", "Train house-style", lambda sink, cancel: ...)
    job.status, job.events, get_runner().position(job.id), get_runner().cancel(job.id)
"""

from __future__ import annotations

import logging

import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from . import paths
from .errors import CancelledError, WorkbenchError
from .progress import ProgressEvent
from .store import atomic_write_json, read_json

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
ACTIVE = {QUEUED, RUNNING}

Work = Callable[[Callable[[ProgressEvent], None], threading.Event], Any]


@dataclass
class Job:
    """One piece of background work."""

    id: str
    """Unique id."""
    kind: str
    """``train``, ``evaluate`` ..."""
    workspace: str
    """Workspace it belongs to."""
    label: str
    """What the user sees."""
    work: Work | None = None
    """(progress sink, cancel event) -> result."""
    status: str = QUEUED
    """queued, running, done, failed, cancelled or interrupted."""
    events: list[ProgressEvent] = field(default_factory=list)
    """Progress events so far."""
    result: Any = None
    """What the work returned."""
    error: str | None = None
    """A message for the user when it failed."""
    created_at: float = field(default_factory=time.time)
    """When it was submitted."""
    started_at: float | None = None
    """When it started running."""
    finished_at: float | None = None
    """When it ended."""
    cancel_event: threading.Event = field(default_factory=threading.Event)
    """Set to ask the work to stop."""

    @property
    def last(self) -> ProgressEvent | None:
        return self.events[-1] if self.events else None

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "workspace": self.workspace, "label": self.label,
                "status": self.status, "error": self.error, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at}


class JobRunner:
    """A queue of jobs and the worker threads that run them."""

    def __init__(self, concurrency: int = 1, per_workspace: int | None = None):
        self.concurrency = max(1, concurrency)
        self.per_workspace = per_workspace
        """At most this many of one workspace's jobs waiting or running (None: no limit): on a shared
        server one person cannot fill the queue that everyone waits in."""
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._loop, name=f"workbench-job-{i}", daemon=True)
                         for i in range(self.concurrency)]
        for w in self._workers:
            w.start()

    def submit(self, kind: str, workspace: str, label: str, work: Work) -> Job:
        job = Job(uuid.uuid4().hex[:12], kind, paths.validate_workspace_name(workspace), label, work)
        with self._lock:
            mine = [j for j in self._jobs.values() if j.workspace == workspace and j.status in ACTIVE]
            if self.per_workspace is not None and len(mine) >= self.per_workspace:
                from . import limits

                raise limits.LimitError(
                    f"This workspace already has {len(mine)} jobs waiting or running ("
                    f"{'; '.join(j.label for j in mine)}), the most one workspace may have on this server.",
                    fix="Wait for one to finish, or cancel one; the server's limit is "
                        "WORKBENCH_MAX_JOBS_PER_WORKSPACE.")
            self._jobs[job.id] = job
        _persist(job)
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, workspace: str | None = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if workspace is None or j.workspace == workspace]

    def position(self, job_id: str) -> int:
        """0 when running or finished; else 1 + the number of queued jobs ahead of it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != QUEUED:
                return 0
            ahead = [j for j in self._jobs.values() if j.status == QUEUED and j.created_at < job.created_at]
            return len(ahead) + 1

    def cancel(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None:
            return
        job.cancel_event.set()
        with self._lock:
            if job.status == QUEUED:
                job.status, job.finished_at = CANCELLED, time.time()
        _persist(job)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            job = self.get(job_id)
            if job is None or job.status != QUEUED:
                continue
            with self._lock:
                job.status, job.started_at = RUNNING, time.time()
            _persist(job)
            try:
                job.result = job.work(job.events.append, job.cancel_event)
                job.status = CANCELLED if job.cancel_event.is_set() else DONE
            except CancelledError as exc:
                job.status, job.error = CANCELLED, str(exc)
            except WorkbenchError as exc:
                job.status, job.error = FAILED, str(exc)
            except Exception as exc:  # a bug: keep the worker alive, keep the details for the log
                job.status = FAILED
                job.error = f"Unexpected error ({type(exc).__name__}: {exc}). Details are in the server log."
                traceback.print_exc()
            job.finished_at = time.time()
            job.work = None  # release what the closure holds (pairs, models)
            _persist(job)


def _jobs_dir(workspace: str):
    path = paths.workspace_dir(workspace) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _persist(job: Job) -> None:
    atomic_write_json(_jobs_dir(job.workspace) / f"{job.id}.json", job.summary())


def job_history(workspace: str) -> list[dict[str, Any]]:
    """Every job recorded in the workspace, newest first. Jobs that were queued or running when the
    process that owned them stopped are reported (and re-recorded) as interrupted."""
    live = {j.id for j in all_jobs(workspace)}
    out = []
    for f in _jobs_dir(workspace).glob("*.json"):
        try:
            rec = read_json(f, None)
        except (OSError, ValueError) as exc:  # a damaged record must not stop the page that lists jobs
            log.warning("Skipping unreadable job record %s: %s", f, exc)
            continue
        if not isinstance(rec, dict) or not {"id", "status", "created_at"} <= set(rec):
            continue
        if rec["status"] in ACTIVE and rec["id"] not in live:
            rec["status"] = INTERRUPTED
            rec["error"] = ("The server stopped while this job was running; the questions it had finished are kept."
                            if rec.get("kind") == "evaluate" else
                            "The server stopped while this job was running; nothing it was writing was kept.")
            atomic_write_json(f, rec)
        out.append(rec)
    return sorted(out, key=lambda r: r["created_at"], reverse=True)


_runner: JobRunner | None = None
_index_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def get_runner() -> JobRunner:
    """The process-wide runner for trainings and evaluations (``WORKBENCH_MAX_JOBS`` at once)."""
    global _runner
    with _runner_lock:
        if _runner is None:
            from . import limits

            from .workshop import workshop_mode

            _runner = JobRunner(limits.value("WORKBENCH_MAX_JOBS"),
                                limits.value("WORKBENCH_MAX_JOBS_PER_WORKSPACE") if workshop_mode() else None)
        return _runner


def get_index_runner() -> JobRunner:
    """The process-wide runner for indexing uploads: a lane of its own, so that adding a document never
    waits behind somebody's hour-long training; one indexing at a time, and in workshop mode at most
    ``WORKBENCH_MAX_JOBS_PER_WORKSPACE`` of one workspace's uploads waiting or running (tabs of one browser
    cannot fill the lane everyone's uploads wait in)."""
    global _index_runner
    with _runner_lock:
        if _index_runner is None:
            from . import limits
            from .workshop import workshop_mode

            _index_runner = JobRunner(1, limits.value("WORKBENCH_MAX_JOBS_PER_WORKSPACE") if workshop_mode() else None)
        return _index_runner


def all_jobs(workspace: str | None = None) -> list[Job]:
    """Jobs of every lane (of ``workspace`` when given), oldest first."""
    runners = [r for r in (_runner, _index_runner) if r is not None]
    return sorted((j for r in runners for j in r.jobs(workspace)), key=lambda j: j.created_at)


def runner_of(job: Job) -> JobRunner:
    """The runner that holds ``job`` (for its queue position and to cancel it)."""
    return _index_runner if _index_runner is not None and _index_runner.get(job.id) is job else get_runner()
