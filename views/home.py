"""Home: what the workbench does, the doctor report, the workspace picker, a quick model check."""

import pandas as pd
import streamlit as st

from workbench import paths, samples, workshop, workspaces
from workbench.config import GenerationConfig
from workbench.doctor import MISSING, OK, run_doctor
from workbench.errors import DataError, WorkbenchError
from workbench.strategies import answer_question
from workbench.training import list_adapters
from workbench.model_choice import adapter_mismatch
from workbench.ui.common import (StatusSink, answer_markdown, generator_id, load_generator, model_line, my_workspaces,
                                 open_workspace, show_error, workspace)

st.title("RAG-vs-Fine-tune Workbench")
st.markdown(
    "Bring your own documents and a few dozen example answers, and see the same questions answered side by side: "
    "by the **base** model (plain, and **prompted** with the answer format and a few examples), with **retrieval** "
    "(RAG), by a **fine-tuned** adapter, and by a **hybrid** of both. "
    "Every answer shows where it came from, how long each stage took and what it would cost, all measured on "
    "this machine. Everything runs locally and offline by default; an API model or your own model server can "
    "join the comparison from the Settings page."
)


@st.cache_data(ttl=60, show_spinner="Checking this machine...")
def doctor_report(model_id: str, embedder_id: str) -> dict:
    return run_doctor(model_id, embedder_id).to_dict()


def render_checks(report: dict, problems: list) -> None:
    """The doctor's findings: what is missing and how to fix it, the checks, the package versions."""
    for c in problems:
        st.markdown(f"- **{c['name']}**: {c['detail']}" + (f"  \n  Fix: `{c['fix']}`" if c["fix"] else ""))
    columns = {
        "name": st.column_config.TextColumn("Check", width="medium"),
        "status": st.column_config.TextColumn("Status", width="small"),
        "detail": st.column_config.TextColumn("What was found", width="large"),
    }
    key_rows = [c for c in report["checks"] if not c["name"].startswith("package ")]
    # A static table wraps long findings instead of cutting them off.
    st.table(pd.DataFrame(key_rows)[list(columns)].rename(columns={k: v["label"] for k, v in columns.items()})
             .set_index("Check"))
    with st.expander("Package versions"):
        pkg_rows = [c for c in report["checks"] if c["name"].startswith("package ")]
        st.dataframe(pd.DataFrame(pkg_rows)[list(columns)], column_config=columns, hide_index=True,
                     width="stretch")


col_ws, col_status = st.columns([1, 2], gap="large")

private = workshop.workshop_mode()


def _create_workspace() -> None:
    name = st.session_state.get("home_new_workspace", "").strip()
    if not name and not private:  # Enter in the field already created it; a click on an empty field asks for a name
        st.session_state["home_workspace_error"] = DataError(
            "Type a name for the new workspace first (lowercase letters, digits, '-' or '_').")
        return
    try:
        if private:  # a new private workspace; what was typed is only its label
            name = workshop.fresh_workspace_name(name or None)
        else:
            paths.workspace_dir(name)
    except WorkbenchError as exc:
        st.session_state["home_workspace_error"] = exc
        return
    open_workspace(name)


with col_ws:
    st.subheader("Workspace")
    current = workspace()
    if private:
        st.caption("A workspace holds your documents, index, adapters and results. On this workshop server yours is "
                   "private: it opens only from its link, and only the facilitator sees every workspace.")
        link = f"{str(st.context.url).split('?')[0]}?workspace={current}"
        st.markdown(f"**Your private link** (bookmark it to come back; anyone you give it to can open "
                    f"`{workshop.short_name(current)}`):")
        st.code(link, language=None, wrap_lines=True)
        names = [n for n in dict.fromkeys(my_workspaces() + [current]) if workshop.may_open(n, facilitator=True)]
    else:
        st.caption("A workspace holds your documents, index, adapters and results. Each person can use their own.")
        names = paths.list_workspaces()
        if current not in names:
            names.append(current)
    # No key: the widget's identity follows the current workspace, so a stale browser-side value
    # can never switch the user back to another workspace.
    choice = st.selectbox("Open workspace", names, index=names.index(current), format_func=workshop.short_name,
                          help="The workspaces you made or opened in this browser tab." if private else None)
    if choice != current:
        open_workspace(choice)
        st.rerun()
    with st.form("new_workspace", clear_on_submit=True, border=False):
        if private:
            st.text_input("New workspace label (optional)", placeholder="e.g. team_a", key="home_new_workspace",
                          help="1-15 lowercase letters, digits or '_'; a private link is made for it.")
        else:
            st.text_input("New workspace name", placeholder="e.g. team-a", key="home_new_workspace",
                          help="1-40 characters: lowercase letters, digits, '-' or '_'.")
        st.form_submit_button("Create and open", icon=":material/add:", on_click=_create_workspace)
    error = st.session_state.pop("home_workspace_error", None)
    if error is not None:
        show_error(error)
    st.markdown("**Start from the sample**")
    st.caption(f"A fictional company's {len(samples.sample_documents())} documents, already indexed, copied into a workspace of your own (the shared "
               "sample stays untouched). Its training pairs and test set are offered on the Fine-tune and Evaluate "
               "pages.")
    if st.button("Copy the sample", icon=":material/content_copy:",
                 help="Creates a new workspace holding the indexed sample documents, and opens it."):
        try:
            target = workshop.fresh_workspace_name("sample")
            if (workspaces.sample_folder() / ".complete").exists():  # indexed before: a plain copy, no indexing
                with st.spinner("Copying the indexed sample..."):
                    workspaces.clone_sample(target)
            else:
                with st.status("Indexing the sample documents (once per server)...", expanded=False) as box:
                    workspaces.clone_sample(target, StatusSink(box))
                    box.update(label=f"Copied the sample into workspace {target}", state="complete")
            open_workspace(target)
            st.session_state["home_sample_done"] = workshop.short_name(target)
            st.rerun()
        except Exception as exc:
            show_error(exc)
    if (done := st.session_state.pop("home_sample_done", None)) is not None:
        st.success(f"Workspace `{done}` holds the sample documents, indexed. Next: ask on the **Compare** page, or "
                   "train an adapter on the **Fine-tune** page.", icon=":material/check_circle:")

with col_status:
    st.subheader("This machine")
    report = doctor_report(generator_id(), st.session_state["embedder_id"])
    problems = [c for c in report["checks"] if c["status"] != OK]
    missing = [c for c in problems if c["status"] == MISSING]
    if not problems:
        st.success("Everything the workbench needs is installed and found offline.", icon=":material/check_circle:")
    elif not missing:
        st.warning(f"Ready, with {len(problems)} warning(s){'' if private else ' below'}.", icon=":material/warning:")
    else:
        st.error(f"{len(missing)} required piece(s) missing: see the fixes below.", icon=":material/error:")
    if private:  # paths and versions of a shared server are its operator's business, not its visitors'
        st.caption("The details (paths, versions) are for whoever runs this server: `python -m workbench doctor`.")
    else:
        render_checks(report, problems)

st.divider()
st.subheader("Try the model")
st.caption(
    "A quick check that the local model answers. The base model knows nothing about your documents yet: "
    "that is what retrieval and fine-tuning add. Once you have trained an adapter, pick it to hear it."
)
model_id = generator_id()
adapters = [a for a in list_adapters(workspace()) if adapter_mismatch(a, model_id) is None]  # only this model's
with st.form("quick_ask"):
    question = st.text_input("Question", value="What can you help me with?", max_chars=2000)
    c_len, c_with = st.columns(2)
    max_tokens = c_len.slider("Maximum answer length (tokens)", 16, 256, 96, step=16)
    picked = c_with.selectbox("Answer with", ["The base model"] + [a.name for a in adapters],
                              help="The base model, or one of this workspace's adapters trained on it (on the "
                                   "Fine-tune page).", disabled=not adapters)
    asked = st.form_submit_button("Ask", icon=":material/send:", type="primary")

if asked:
    try:
        generator = load_generator(model_id)
        chosen = next((a for a in adapters if a.name == picked), None)
        box = st.container(key="quick_answer").empty()
        streamed: list[str] = []

        def on_text(piece: str) -> None:
            streamed.append(piece)
            box.markdown(answer_markdown("".join(streamed)) + " ▌")

        answer = answer_question(question, generator, "finetuned" if chosen else "base",
                                 GenerationConfig(max_new_tokens=max_tokens), on_text=on_text,
                                 adapter=chosen)
        box.markdown(answer_markdown(answer.text) or "_(empty answer)_")
        tok_s = answer.tokens_per_s or 0.0
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Time to first token", f"{(answer.timing('ttft') or 0) * 1000:.0f} ms")
        c2.metric("Decode speed (tokens/s)", f"{tok_s:.1f}")
        c3.metric("Tokens in / out", f"{answer.usage.tokens_in} / {answer.usage.tokens_out}")
        c4.metric("Total time", f"{answer.total_s:.2f} s")
        if answer.finish_reason == "length":
            st.caption("The answer stopped at the length limit; raise it for longer answers.")
        model_line(answer.model_id)
    except Exception as exc:
        show_error(exc)

with st.expander("Limits on this server", icon=":material/tune:"):
    from workbench import limits

    st.caption("Set by whoever runs the server, through environment variables; each limit, when reached, says which "
               "one it was.")
    st.dataframe(pd.DataFrame(limits.table()).rename(columns={"limit": "Limit", "value": "Value",
                                                              "variable": "Variable", "source": "Set by"}),
                 hide_index=True, width="stretch")

with st.expander("Memory on this server", icon=":material/memory:"):
    report = workspaces.memory_report(max_age_s=30)
    st.caption("All sessions on this server share one copy of each model: the figures are for the whole server "
               "process, measured now (the count of model copies at most 30 s ago).")
    c1, c2, c3 = st.columns(3)
    c1.metric("Memory in use", f"{report['rss_mb']:,.0f} MB" if report["rss_mb"] else "unknown")
    c2.metric("Peak", f"{report['peak_rss_mb']:,.0f} MB" if report["peak_rss_mb"] else "unknown")
    c3.metric("Copies of a model in memory", report["model_copies"],
              help="Most copies of any one model found on the heap (1 = shared by every session).")
    st.caption(f"Questions asked at the same moment are decoded together; the most adapters in one such batch so "
               f"far: {report['adapters_in_batch']}.")
    if report["models"]:
        st.dataframe(pd.DataFrame(report["models"]).rename(columns={
            "kind": "Kind", "id": "Model", "parameters": "Parameters", "weights_mb": "Weights (MB)"}),
            hide_index=True, width="stretch")
    else:
        st.caption("No model loaded yet: the first question loads one.")
