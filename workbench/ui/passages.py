"""RAG's passage count on Compare and Evaluate: the slider starts from the count chosen on the workspace's
training pairs (``workbench.tuning``), and Evaluate offers to measure it as a job."""

from typing import Any

import streamlit as st

from workbench import paths
from workbench.config import RetrievalConfig
from workbench.estimates import evaluation_estimate
from workbench.jobs import ACTIVE
from workbench.pairs import read_pairs
from workbench.prompts import load_prompts
from workbench.training import TRAINING_PAIRS
from workbench.tuning import CANDIDATES, load_tuning, save_tuning, training_questions, tune_passages, tuned_top_k
from workbench.ui.common import load_generator, show_error
from workbench.ui.jobs import job_panel, watch_job

LABEL = "Chunks retrieved (RAG, hybrid)"


def passages_slider(container: Any, ws: str, index: Any, model_id: str) -> int:
    """The passage-count slider, starting from the tuned count while it applies (same model and index)."""
    tuning = tuned_top_k(ws, model_id, index)
    if tuning is not None:
        return container.slider(LABEL, 1, 10, min(tuning.top_k, 10), help=f"Starts at {tuning.note()}.")
    return container.slider(LABEL, 1, 10, RetrievalConfig().top_k,
                            help="Starts at 5, the retrieval default. A small model often answers better from fewer "
                                 "passages: 'RAG's fair best shot' on the Evaluate page measures the best count on "
                                 "this workspace's training pairs.")


def tuning_panel(runner: Any, ws: str, index: Any, model_id: str) -> None:
    """Evaluate's expander: the current choice, and a job that measures it on the training pairs."""
    tuning = tuned_top_k(ws, model_id, index)
    title = f"RAG's fair best shot: {tuning.top_k} passage(s)" if tuning else "RAG's fair best shot: how many passages?"
    with st.expander(title, icon=":material/tune:"):
        counts = ", ".join(map(str, CANDIDATES))
        st.caption("Comparing approaches with RAG at a setting that handicaps it gives the wrong verdict. This asks "
                   f"the workspace's training questions (not the test set) through RAG with {counts} passages, "
                   "judges each answer against the pair's answer, and keeps the count with the most correct "
                   "answers (a tie goes to fewer passages). Compare and Evaluate then start from it for this model "
                   "and index.")
        earlier = load_tuning(ws)
        if tuning is not None:
            st.markdown(f"**Now:** {tuning.note()}; measured in {tuning.wall_s:.0f} s.")
        elif earlier is not None:
            st.caption(f"The last measurement ({earlier.top_k} passage(s), model {earlier.model_id}) was for another "
                       "model or another version of the documents, so it does not apply: measure again.")
        pairs_file = paths.workspace_dir(ws, create=False) / TRAINING_PAIRS
        job_id = st.session_state.get("tune_job")
        job = runner.get(job_id) if job_id else None
        if not pairs_file.exists():
            st.info("No training pairs in this workspace yet: train an adapter on the Fine-tune page first (its pairs "
                    "are kept here).", icon=":material/info:")
            return
        try:
            pairs, _ = read_pairs(pairs_file.name, pairs_file.read_bytes(), strict=False)
        except Exception as exc:  # an unreadable file: said here, the rest of the page still works
            show_error(exc)
            return
        answerable = len(training_questions(pairs))
        count = st.number_input("Training questions to ask", 1, max(1, answerable), max(1, min(answerable, 30)),
                                help="Fewer run faster; more measure better. Each question is answered once per "
                                     "passage count.", key="tune_count")
        answers = int(count) * len(CANDIDATES)
        said = f"{answers} RAG answers ({int(count)} questions × {len(CANDIDATES)} passage counts)"
        if earlier is not None and earlier.model_id == model_id and earlier.questions and earlier.wall_s:
            per = earlier.wall_s / (earlier.questions * len(earlier.correct))
            st.caption(f"{said}: about {per * answers / 60:.0f} min ({per:.1f} s per answer in the last measurement).")
        else:
            estimate = evaluation_estimate(ws, answers, ["rag"], model_id)
            st.caption(said + (f": {estimate.text()}." if estimate else
                               ", about as long as an evaluation of that many answers."))
        if st.button("Measure on the training pairs", icon=":material/science:",
                     disabled=bool(job and job.status in ACTIVE) or not answerable):
            try:
                generator = load_generator(model_id)
                limit = int(count)

                def work(sink: Any, cancel: Any) -> dict[str, Any]:
                    result = tune_passages(pairs, index, generator, prompts=load_prompts(ws), limit=limit,
                                           progress=sink, cancel=cancel)
                    save_tuning(ws, result)
                    return {"top_k": result.top_k}
                job = runner.submit("tune", ws, "RAG's passage count on the training pairs", work)
                st.session_state["tune_job"] = job.id
                st.rerun()
            except Exception as exc:
                show_error(exc)

        def draw(job: Any) -> None:
            with st.container(border=True):
                job_panel(runner, job, starting="Starting: loading the model...", cancel_label="Cancel",
                          cancelled="Cancelled: nothing was stored.",
                          failed="The measurement failed; nothing was stored.", refresh_key="tune_refreshed")

        watch_job(runner, st.session_state.get("tune_job"), draw)
