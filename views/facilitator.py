"""Facilitator: every workspace on this server, the job queue, a leaderboard, and reset, delete and
export. Behind a passphrase (stored only as a hash)."""

import time

import pandas as pd
import streamlit as st

from workbench import paths, workshop, workspaces
from workbench.jobs import ACTIVE, all_jobs, get_runner, runner_of
from workbench.ui.common import open_workspace, show_error, stop_page

st.title("Facilitator")
if not workshop.facilitator_enabled():
    st.info("No facilitator passphrase is set on this server. Whoever runs it sets one with "
            "`python -m workbench facilitator --set-passphrase` (stored as a salted hash under the data folder), "
            f"or passes a hash in `{workshop.ENV_PASSPHRASE_HASH}`.", icon=":material/lock:")
    stop_page()
if not st.session_state.get("facilitator"):
    with st.form("facilitator_login"):
        phrase = st.text_input("Facilitator passphrase", type="password")
        if st.form_submit_button("Open", type="primary", icon=":material/lock_open:"):
            try:
                if workshop.check_facilitator(phrase, session_tries=st.session_state.setdefault("facilitator_tries", [])):
                    st.session_state["facilitator"] = True
                    st.rerun()
                time.sleep(1.0)  # slow down guessing
                st.error("That passphrase is not the facilitator's.", icon=":material/lock:")
            except workshop.TooManyGuesses as exc:
                st.error(f"Too many wrong passphrases; tries are paused for {exc.wait_s:.0f} s.",
                         icon=":material/lock_clock:")
    stop_page()

runner = get_runner()
c1, c2 = st.columns([4, 1])
c1.caption("Everything on this server, refreshed on each visit. Attendees keep working while you look.")
if c2.button("Lock", icon=":material/lock:"):
    st.session_state.pop("facilitator", None)
    st.rerun()

# -- workspaces ----------------------------------------------------------------------------------------------
st.subheader("Workspaces")
statuses = [workspaces.workspace_status(n) for n in paths.list_workspaces(existing=True)]
if not statuses:
    st.caption("No workspace holds anything yet: each appears here once its owner opens a page.")
else:
    frame = pd.DataFrame(statuses).drop(columns=["workspace"])  # short labels only: this table may be projected
    frame["last_activity"] = pd.to_datetime(frame["last_activity"], unit="s").dt.strftime("%H:%M:%S").fillna("–")
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "label": "Workspace", "documents": "Documents", "adapters": "Adapters", "questions": "Compare questions",
        "evaluations": "Evaluations", "finished_evaluations": "Finished", "jobs": "Jobs now",
        "last_activity": "Last change", "size_mb": st.column_config.NumberColumn("Size (MB)", format="%.1f")})

# -- jobs -----------------------------------------------------------------------------------------------------------
st.subheader("Job queue")
jobs = [j for j in all_jobs() if j.status in ACTIVE]
st.caption(f"{len(jobs)} job(s) queued or running; {runner.concurrency} training or evaluation run(s) at once on "
           "this server (WORKBENCH_MAX_JOBS), and one indexing of uploads in a lane of its own.")
if not jobs:
    st.caption("No jobs right now.")
for job in sorted(jobs, key=lambda j: j.created_at):
    c1, c2 = st.columns([5, 1])
    pos = runner_of(job).position(job.id)
    last = job.last
    c1.markdown(f"**{workshop.short_name(job.workspace)}** · {job.kind}: {job.label} · "
                + (f"queued, position {pos}" if pos else f"running ({last.message if last else 'starting'})"))
    if c2.button("Cancel", key=f"cancel_{job.id}", icon=":material/cancel:"):
        runner_of(job).cancel(job.id)
        st.rerun()

# -- leaderboard -------------------------------------------------------------------------------------------------------
st.subheader("Leaderboard")
board = workspaces.leaderboard()
st.caption("Each workspace's cost column uses its own price table and hardware (Costs page).")
if not board:
    st.caption("No workspace has finished an evaluation yet: the leaderboard fills as attendees run them.")
else:
    st.dataframe(pd.DataFrame(board), hide_index=True, width="stretch", column_config={
        "workspace": "Workspace", "approach": "Approach",
        "correct": st.column_config.NumberColumn("Correct", format="percent"),
        "f1": st.column_config.NumberColumn("Token F1", format="percent"),
        "format_ok": st.column_config.NumberColumn("Format", format="percent"),
        "latency_p50_s": st.column_config.NumberColumn("Latency p50 (s)", format="%.2f"),
        "cost_per_1k_usd": st.column_config.NumberColumn("$ per 1k queries", format="%.4f"),
        "questions": "Questions", "run": "Run"})
st.download_button("Export all results (zip)", workspaces.export_all(),
                   file_name=f"workbench-results-{time.strftime('%Y%m%d-%H%M')}.zip", mime="application/zip",
                   icon=":material/download:",
                   help="Every workspace's compare history, evaluation runs, job records, cost and decision inputs and "
                        "adapter records, plus the leaderboard as CSV and JSON (no indexes or weights).")

# -- reset / delete ---------------------------------------------------------------------------------------------------
st.subheader("Open, reset or delete a workspace")
st.caption("Workspaces show their label and the first digits of their private name. Opening one lists it on your "
           "Home page, to help its owner.")
with st.form("facilitator_manage"):
    target = st.selectbox("Workspace", [s["workspace"] for s in statuses], format_func=workshop.short_name)
    action = st.radio("Action", ["Open it here", "Reset (empty it, keep the name)", "Delete"], horizontal=True)
    confirm = st.text_input("To reset or delete, type the workspace as shown without the '…' (e.g. heron-3f2a)")
    go = st.form_submit_button("Apply", icon=":material/task_alt:")
if go and target is not None:
    expected = workshop.short_name(target, "")
    if action.startswith("Open"):
        open_workspace(target)
        st.success(f"Workspace {workshop.short_name(target)} is open in this tab (sidebar); the Home page lists it.",
                   icon=":material/check:")
    elif confirm != expected:
        st.error(f"Expected {expected!r} typed to confirm, got {confirm!r}; nothing was changed.",
                 icon=":material/error:")
    else:
        try:
            (workspaces.reset_workspace if action.startswith("Reset") else workspaces.delete_workspace)(target)
            st.success(f"Workspace {expected} {'reset' if action.startswith('Reset') else 'deleted'}.",
                       icon=":material/check:")
        except Exception as exc:
            show_error(exc)
