"""Shared Streamlit helpers for app.py and views/ (the pages).

Pages show a ``WorkbenchError`` as ``st.error`` (with its fix); any other exception is logged and
shown as a short message, never as a traceback.
"""

from __future__ import annotations

import logging
import re
import streamlit as st

from .. import models, paths
from ..config import DEFAULT_EMBEDDER
from ..errors import WorkbenchError
from ..progress import ProgressEvent

log = logging.getLogger("workbench.app")


def init_session() -> None:
    """Small per-user defaults; called once per run by app.py.

    The workspace travels in the URL (``?workspace=NAME``): a bookmark, a reload or a restarted
    server brings the user back to their own workspace. An invalid name in the URL is ignored. In
    workshop mode the link is the key: only an existing private workspace opens from it (see
    ``workshop.may_open``); anything else gives a new visitor a fresh private workspace."""
    from ..workshop import TooManyWorkspaces, fresh_workspace_name, may_open, workshop_mode

    st.session_state.setdefault("embedder_id", DEFAULT_EMBEDDER)
    if "workspace" not in st.session_state:
        requested = st.query_params.get("workspace")
        if requested and may_open(requested):
            if requested != paths.DEFAULT_WORKSPACE and not (paths.workspaces_dir() / requested).is_dir():
                st.session_state["new_workspace_param"] = requested  # a mistyped link must not look like lost data
            st.session_state["workspace"] = requested
        else:
            if requested:  # a bad name, or (workshop mode) a workspace this link cannot open
                st.session_state["bad_workspace_param"] = requested
            try:  # a new visitor: their own fresh, private workspace in workshop mode, else the default one
                st.session_state["workspace"] = fresh_workspace_name() if workshop_mode() else \
                    paths.DEFAULT_WORKSPACE
            except TooManyWorkspaces as exc:
                st.session_state["workspace_refused"] = exc
                return
        my_workspaces().append(st.session_state["workspace"])
    if st.query_params.get("workspace") != st.session_state["workspace"]:
        st.query_params["workspace"] = st.session_state["workspace"]


class PageDone(Exception):
    """Raised by ``stop_page``: the page has nothing more to show (app.py catches it)."""


def stop_page() -> None:
    """End the page here, like ``st.stop()``, but let app.py still draw the sidebar after it."""
    raise PageDone


def workspace() -> str:
    return st.session_state.get("workspace", paths.DEFAULT_WORKSPACE)


def generator_id() -> str:
    """The model the open workspace answers and trains with (chosen on the Settings page)."""
    from ..model_choice import generator_for

    return generator_for(workspace())


def server_field(container, label: str, kind: str, *, key: str | None = None, value: str = "",
                 empty: str = "local", empty_id: str = "", placeholder: str | None = None,
                 help: str | None = None) -> str:
    """Where a model id or a Chroma address is entered. Outside workshop mode a text field; in workshop mode
    a choice among the operator's servers (``servers.allowed``) and ``empty`` (standing for ``empty_id``:
    the local default), so that no visitor can type a URL or a path. Returns the id."""
    from .. import servers

    if not servers.restricted():
        return container.text_input(label, value=value, key=key, placeholder=placeholder or empty, help=help)
    options = [empty_id] + [s.id for s in servers.allowed(kind) if s.id != empty_id]
    if value and value not in options and servers.name_for(kind, value) is None:
        value = empty_id  # something the list no longer offers: show the default, never the old text

    def shown(ident: str) -> str:
        return empty if ident == empty_id else servers.name_for(kind, ident) or ident

    return container.selectbox(label, options, index=options.index(value) if value in options else 0, key=key,
                               format_func=shown, help=(help + " " if help else "") +
                               "This workshop server offers only the servers its operator listed.")


def my_workspaces() -> list[str]:
    """The workspaces this browser session created or opened from a link (in workshop mode, the only
    ones it lists)."""
    return st.session_state.setdefault("my_workspaces", [])


def open_workspace(name: str) -> None:
    st.session_state["workspace"] = name
    if name not in my_workspaces():
        my_workspaces().append(name)


_QUOTED = re.compile(r"""(?<![\w])(['"“])((?:(?!\1|”)[^\n]){1,300})(['"”])(?![\w])""")


def quoted_inert(message: str) -> str:
    """An error message with the values it quotes (a name typed, a file's line: ``'quick_ra*x*'``) made inert
    for Markdown, so they show as typed; the message's own formatting (`commands`) is kept."""
    from ..reports import md_inert

    return _QUOTED.sub(lambda m: m.group(1) + md_inert(m.group(2)) + m.group(3), message)


def show_error(exc: BaseException) -> None:
    from ..generation.coalesce import Cancelled

    if isinstance(exc, Cancelled):  # the browser went away mid-answer: nobody to tell, nothing went wrong
        log.info("Stopped answering: %s", exc)
        return
    if isinstance(exc, WorkbenchError):
        message = quoted_inert(super(WorkbenchError, exc).__str__())
        st.error(message, icon=":material/error:")
        if exc.fix:
            st.caption(f"How to fix: {exc.fix}")
    else:
        log.exception("Unexpected error", exc_info=exc)
        st.error(
            f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
            "nothing you built was lost. Try again, or reload the page.",
            icon=":material/bug_report:",
        )


class StatusSink:
    """A ProgressSink that draws into an ``st.status`` box with a progress bar."""

    def __init__(self, status) -> None:
        self.status = status
        self.bar = status.progress(0.0)

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            self.status.update(label=event.message)
        if event.fraction is not None:
            self.bar.progress(event.fraction)


def load_generator(model_id: str):
    """The process-wide generator, with a status box the first time it loads or converts."""
    if models.is_remote(model_id):  # a client, not a loaded model (a key typed into Settings goes to OpenAI only)
        return models.backend_for(model_id, st.session_state.get("openai_api_key"))
    if ("generator", model_id) in models.loaded_models():
        return models.get_generator(model_id)
    with st.status(f"Loading {model_id}...", expanded=False) as status:
        generator = models.get_generator(model_id, progress=StatusSink(status))
        status.update(label=f"Loaded {model_id} in {generator.load_s:.1f} s", state="complete")
    return generator


def answer_markdown(text: str) -> str:
    """Model output for ``st.markdown``: headings become bold lines, raw HTML is escaped, and web addresses
    are shown as text, not links (a small model makes them up), so an answer cannot blow up the layout of
    its column or send anyone to an invented site (lists and bold still render)."""
    import html
    import re

    lines = []
    for line in (text or "").splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*)$", line)
        line = f"**{heading.group(1).strip()}**" if heading else line
        line = re.sub(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)", r"\1 (\2)", line)  # [text](url) -> text (url)
        line = re.sub(r"`*((?:https?://|ftp://|www\.)[^\s`)]*[^\s`),.;:!?'\"])`*", r"`\1`", line)  # code: no link
        lines.append(line)
    return html.escape("\n".join(lines), quote=False).replace("\n", "  \n")


def job_header(runner, job, queue_note: str = "") -> None:
    """A background job's label and status, and its place in the queue while it waits."""
    st.markdown(f"**{job.label}**: {job.status}")
    if job.status == "queued":
        # What it waits for: this workspace's own jobs by name, another person's only as a count.
        ahead = [j for j in runner.jobs() if j.status == "running"
                 or (j.status == "queued" and j.created_at < job.created_at)]
        own = [f"{j.label} ({j.status})" for j in ahead if j.workspace == job.workspace]
        others = len(ahead) - len(own)
        after = own + ([f"{others} job{'s' if others != 1 else ''} of other workspaces"] if others else [])
        st.info(f"Waiting in the queue: position {runner.position(job.id)}"
                + (f", after {md_escape('; '.join(after), 300)}" if after else "") + "."
                + (f" {queue_note}" if queue_note else ""),
                icon=":material/hourglass_top:")


def model_line(model_id: str) -> None:
    """One small line: which model answered and, for a small one, that its quality will not carry over."""
    line, small = models.model_note(model_id)
    st.caption(line)
    if small:
        st.page_link("views/settings.py", label="Connect a larger model in Settings", icon=":material/settings:")


def md_escape(text: str, limit: int = 80) -> str:
    """Text from outside (a URL parameter, a file name) made inert for ``st.markdown``: every Markdown and
    HTML character escaped, control characters shown as escapes, and cut to ``limit`` characters."""
    from ..reports import md_inert

    return md_inert(repr(str(text)[:limit])[1:-1] + ("..." if len(str(text)) > limit else ""))


def rate_line(container, pricing) -> None:
    """One line saying what local answers are priced at, with the way to change it (the Costs page)."""
    rate = pricing.rate
    how = rate.seconds_cost(1.0)
    note = "" if how.usd is not None else f" (local costs unknown: {how.basis})"
    container.caption(f"Local answers are priced at {rate.label()}{note}, the hardware chosen on the Costs page.")
    container.page_link("views/costs.py", label="Change the hardware or prices", icon=":material/payments:")
