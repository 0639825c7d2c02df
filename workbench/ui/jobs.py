"""Watching a background job from a page: the polling, its progress bar, Cancel, and one refresh at the end.

Work of minutes runs in the core's job runner (``workbench.jobs``); a widget click would interrupt a
script that waited for it. A page instead shows the job in a fragment that reruns itself every
``every`` seconds while the job is queued or running, and stops polling when it ends:

    watch_job(runner, st.session_state.get("train_job"), draw, every=1.0)

``draw(job)`` renders the page's own view of the job (its metrics, its charts, its end message); the
helpers below draw the parts every page shares.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from ..jobs import ACTIVE, CANCELLED, DONE
from .common import job_header


def watch_job(runner: Any, job_id: str | None, draw: Callable[[Any], None], every: float = 1.0) -> None:
    """Draw ``job_id``'s job with ``draw`` now, and again every ``every`` seconds while it is active."""
    job = runner.get(job_id or "")
    if job is None:
        return

    @st.fragment(run_every=every if job.status in ACTIVE else None)
    def _live() -> None:
        current = runner.get(job_id or "")
        if current is not None:
            draw(current)

    _live()


def adopt_job(runner: Any, workspace: str, kind: str, key: str) -> str | None:
    """The job this browser session started under ``key`` or, when it knows none (the page was reloaded, which
    starts a new session) or cancelled it, the workspace's latest ``kind`` job still queued or running: its
    progress and Cancel come back instead of the page looking idle while the work goes on."""
    current = runner.get(st.session_state.get(key) or "")
    if current is None or current.status == CANCELLED:  # a cancelled one gives way to one still at work
        active = sorted((j for j in runner.jobs(workspace) if j.kind == kind and j.status in ACTIVE),
                        key=lambda j: j.created_at)
        if active:
            st.session_state[key] = active[-1].id
    return st.session_state.get(key)


def progress_line(job: Any, last: Any = None, starting: str | None = None) -> None:
    """The job's latest progress as a bar (with the time left when the job reports it), else its message."""
    last = job.last if last is None else last
    if last is not None and last.fraction is not None:
        eta = last.metrics.get("eta_s") if job.status in ACTIVE else None  # an ended job has no time left
        ended = {CANCELLED: " · cancelled here"}.get(job.status, "")
        st.progress(last.fraction, text=f"{last.message} · about {eta:.0f} s left" if eta is not None
                    else last.message + ended)
    elif last is not None:
        st.caption(last.message)
    elif starting and job.status == "running":
        st.progress(0.0, text=starting)


def cancel_button(runner: Any, job: Any, label: str) -> None:
    """A Cancel button while the job is active (the fragment reruns to show the cancel take effect)."""
    if job.status in ACTIVE and st.button(label, icon=":material/cancel:", key=f"cancel-{job.id}"):
        runner.cancel(job.id)
        st.rerun(scope="fragment")


def job_panel(runner: Any, job: Any, *, starting: str, cancel_label: str, cancelled: str, failed: str,
              done: str | None = None, refresh_key: str | None = None) -> None:
    """The usual view of a job: its header and progress, Cancel while it is active, then its end message
    (``done`` if given, ``cancelled``, or the job's error, else ``failed``) and, with ``refresh_key``, one
    rerun of the page so that what it made appears."""
    job_header(runner, job, "Cancel below to stop waiting.")
    progress_line(job, starting=starting)
    if job.status in ACTIVE:
        cancel_button(runner, job, cancel_label)
    elif job.status == DONE:
        if done:
            st.success(done, icon=":material/check_circle:")
    elif job.status == CANCELLED:
        st.warning(cancelled, icon=":material/cancel:")
    else:
        st.error(job.error or failed, icon=":material/error:")
    if refresh_key:
        refresh_once(job, refresh_key)


def refresh_once(job: Any, key: str) -> None:
    """Rerun the whole page once after the job ended, so what it made (an adapter, results) appears."""
    if job.status not in ACTIVE and st.session_state.get(key) != job.id:
        st.session_state[key] = job.id
        st.rerun(scope="app")


__all__ = ["adopt_job", "cancel_button", "job_header", "job_panel", "progress_line", "refresh_once", "watch_job"]
