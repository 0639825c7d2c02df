"""Evaluate: a test set through every approach as a background job, with metrics that tell the
approaches apart, charts, a per-question table, run comparison and exports."""

import json
import time

import pandas as pd
import streamlit as st

from workbench import models, paths, samples
from workbench.charts import latency_box_chart, metric_bars_chart, tradeoff_chart
from workbench.config import GenerationConfig, RetrievalConfig
from workbench.eval_runs import (CANCELLED, DONE, INTERRUPTED, RUNNING, evaluate, get_eval_run, judge_version,
                                 knowledge_update, list_eval_runs, rejudge, training_pairs_of, update_questions)
from workbench.eval_summary import (MIN_QUESTIONS, MIN_UNANSWERABLE, compare_runs, judge_agreement, per_question,
                                    result_rows, summarize, update_transitions)
from workbench.errors import WorkbenchError
from workbench.records import EvalRun
from workbench.verdicts import DESCRIPTIONS as VERDICT_HELP, JUDGE_CHANGES, JUDGE_VERSION
from workbench.estimates import evaluation_estimate
from workbench.glossary import TERMS
from workbench.store import csv_bytes
from workbench.evaluation import leakage, read_testset
from workbench.index import open_index
from workbench.pricing import pricing_for
from workbench.reports import evaluation_report
from workbench.jobs import ACTIVE, get_runner
from workbench.strategies import LABELS, MODES, availability, uses_passages, ComparisonSpec
from workbench.training import list_adapters
from workbench.raft import adapter_label
from workbench.ui.common import (generator_id, load_generator, md_escape, model_line, rate_line, server_field,
                                 show_error, stop_page, workspace)
from workbench.ui.jobs import adopt_job, job_panel, watch_job
from workbench.tuning import run_note
from workbench.ui.passages import passages_slider, tuning_panel
from workbench.ui.prompts import approach_setup

st.title("Evaluate")
st.caption("One question proves nothing. Run a test set through every approach and compare correctness, grounding, "
           "format, refusals, latency and cost, measured on your data.")
ws = workspace()
runner = get_runner()
adopt_job(runner, ws, "evaluate", "eval_job")
index = open_index(ws)
adapters = list_adapters(ws)
adapter_names = {a.name: adapter_label(a, generator_id()) for a in adapters} | {"(none yet)": "(none yet)"}

# -- 1. test set --------------------------------------------------------------------------------------
st.subheader("1. Test set")
# As on Fine-tune: the sample's set is the default only in a workspace on the sample company, and a choice
# and an upload are kept for this browser session.
source_options = ["The sample evaluation set (50 questions)", "Upload a file"]
on_sample = samples.looks_like_sample(d["name"] for d in index.documents())
remembered = st.session_state.get(f"eval_source_{ws}")
source = st.radio("Which questions?", source_options, horizontal=True,
                  index=source_options.index(remembered) if remembered in source_options else 0 if on_sample else 1)
st.session_state[f"eval_source_{ws}"] = source
items, report, name = None, None, None
try:
    if source == "Upload a file":
        upload = st.file_uploader("Test set", type=["jsonl", "csv"],
                                  help="JSONL or CSV with 'question' and 'reference'; optional 'source' (the "
                                       "document expected to hold the answer) and 'answerable' (false when the "
                                       "documents cannot answer).")
        kept = st.session_state.get(f"eval_upload_{ws}")
        if upload is not None:
            kept = st.session_state[f"eval_upload_{ws}"] = (upload.name, upload.getvalue())
        elif kept is not None:
            st.caption(f"Using {md_escape(kept[0])}, uploaded earlier; upload another file to replace it.")
        if kept is not None:
            name = kept[0]
            items, report = read_testset(*kept)
        else:
            st.info("Upload a test set, or use the sample evaluation set.", icon=":material/upload_file:")
    else:
        path = samples.sample_dir() / "eval_set.jsonl"
        items, report = read_testset(path.name, path.read_bytes())
        name = path.name
except Exception as exc:
    show_error(exc)

if items:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Questions", len(items))
    c2.metric("Unanswerable", sum(not i.answerable for i in items))
    c3.metric("With expected source", sum(bool(i.source) for i in items))
    c4.metric("Rejected rows", len(report.problems))
    if report.problems:
        st.warning(f"{len(report.problems)} row(s) were skipped; the other questions can still run:",
                   icon=":material/warning:")
        st.dataframe(pd.DataFrame({"Problem": report.problems}), hide_index=True, width="stretch")

# -- 2. settings and run -------------------------------------------------------------------------------
st.subheader("2. Run")
job_id = st.session_state.get("eval_job")
job = runner.get(job_id) if job_id else None
if items:
    with st.form("evaluate", enter_to_submit=False):
        c1, c2 = st.columns([2, 1])
        modes = c1.multiselect("Approaches", list(MODES), default=["base", "prompted", "rag", "finetuned", "hybrid"],
                               format_func=lambda m: LABELS[m])
        adapter_name = c2.selectbox("Adapter (fine-tuned and hybrid)",
                                    [a.name for a in adapters] or ["(none yet)"], format_func=adapter_names.get)
        c3, c4, c5 = st.columns(3)
        count = c3.number_input("Questions to run (from the top)", 1, len(items), min(len(items), 50),
                                help="A slice runs faster; the whole set measures better.")
        top_k = passages_slider(c4, ws, index, generator_id())
        max_tokens = c5.slider("Maximum answer length (tokens)", 16, 256, 96, step=16)
        c6, c7 = st.columns(2)
        label = c6.text_input("Label for this run (optional)", placeholder="e.g. rank 16, 3 epochs")
        judge_id = server_field(c7, "LLM judge (optional, off when empty)", "generator", empty="off",
                                placeholder="openai:gpt-4o-mini or compat:http://127.0.0.1:8000/v1#model",
                                help="A model that grades every answer against the reference (CORRECT / INCORRECT "
                                      "with a reason). Its own tokens and cost are shown with the results.")
        with st.expander("Models per approach (optional): evaluate an API model or a server"):
            st.caption("Empty: the local model. `openai:MODEL` or `compat:http://HOST:PORT/v1#MODEL`; for fine-tuned "
                       "and hybrid, a remote model is itself fine-tuned or serves your adapter under a name.")
            bcols = st.columns(2)
            backend_ids = {m: server_field(bcols[i % 2], f"Model for {LABELS[m]}", "generator",
                                           key=f"eval_backend_{m}") for i, m in enumerate(MODES)}
            remote_adapter = st.text_input("Adapter name on that server (empty: the model itself)",
                                           key="eval_backend_adapter")
        go = st.form_submit_button("Run evaluation", icon=":material/play_arrow:", type="primary",
                                   disabled=bool(job and job.status in ACTIVE))
    tuning_panel(runner, ws, index, generator_id())
    prompts, chosen, examples, plan = approach_setup(ws, "eval_prompts", index, adapters, adapter_name, modes, backend_ids)
    will_run = [m for m in modes if not plan.get(m)]  # the estimate counts only the approaches that will run
    estimate = evaluation_estimate(ws, int(count), will_run, generator_id()) if will_run else None
    if will_run and (estimate or not (job and job.status in ACTIVE)):  # while one runs, its progress says the time
        st.caption(f"Estimated time for {int(count)} question(s) through {len(will_run)} approach(es): "
                   f"{estimate.text()}." if estimate else
                   "No evaluation has run in this workspace yet, so there is no measured speed to estimate from: "
                   "the progress bar shows the time left once the first questions finish.")
    remote_modes = {m for m, b in backend_ids.items() if b.strip()}
    if chosen and chosen.retrieval_aware:
        ra = chosen.retrieval_aware
        st.caption(f"Adapter **{chosen.name}** is retrieval-aware: trained with {ra['passages']} retrieved passages "
                   f"in each prompt ({'their ' + str(ra['sentences']) + ' best sentences' if ra['sentences'] else 'whole'}"
                   f"); the hybrid shows it passages the same way.")
    for mode, reason in plan.items():
        if reason:
            st.caption(f":orange[{LABELS[mode]} will be skipped: {reason}]")
    if chosen:
        pairs = training_pairs_of(chosen.path)
        if pairs:
            overlap = leakage([i.question for i in items[:count]], [p["question"] for p in pairs],
                              models.get_embedder(index.config.embedder_id).embed)
            if overlap:
                st.warning(f"{len(overlap)} test question(s) also appear in the adapter's training pairs: its scores "
                           "on them measure memory, not what it learned. Leave them out for a fair comparison.",
                           icon=":material/content_copy:")
                with st.expander("Overlapping questions"):
                    st.dataframe(pd.DataFrame(overlap), hide_index=True, width="stretch")
        else:
            st.caption("This adapter's folder does not keep its training pairs (trained before they were saved), "
                       "so provenance and leakage cannot be checked.")
    if go:
        runnable = [m for m in modes if not plan.get(m)]
        if not runnable:
            st.warning("None of the chosen approaches can run yet; see the reasons above.")
        else:
            try:
                generator = load_generator(generator_id())
                session_key = st.session_state.get("openai_api_key")
                judge = models.backend_for(judge_id.strip(), session_key) if judge_id.strip() else None
                spec = ComparisonSpec.build(
                    runnable, generator, backend_ids={m: backend_ids[m] for m in remote_modes},
                    remote_adapter=remote_adapter.strip(), session_key=session_key, adapter=chosen,
                    retrieval=RetrievalConfig(top_k=top_k), generation=GenerationConfig(max_new_tokens=max_tokens),
                    prompts=prompts, examples=examples, embedder_id=index.config.embedder_id)
                subset = items[: int(count)]
                run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + f"{int(time.time() * 1000) % 1000000:06d}"
                job = runner.submit("evaluate", ws, f"Evaluate {len(subset)} question{'s' if len(subset) != 1 else ''} × "
                                    f"{len(runnable)} approach{'es' if len(runnable) != 1 else ''}",
                                    lambda sink, cancel: evaluate(subset, spec, workspace=ws, index=index,
                                                                  testset_name=name, label=label.strip(),
                                                                  run_id=run_id, progress=sink, cancel=cancel,
                                                                  judge=judge))
                st.session_state["eval_job"], st.session_state["eval_run"] = job.id, run_id
                st.rerun()
            except Exception as exc:
                show_error(exc)


def draw_evaluation(job) -> None:
    with st.container(border=True):
        job_panel(runner, job, starting="Starting: loading models and the first question...",
                  cancel_label="Cancel evaluation", done="Evaluation finished; the results are below.",
                  cancelled="Cancelled: the questions finished before are kept and shown below.",
                  failed="The evaluation failed; the questions finished before are kept.", refresh_key="eval_refreshed")
        if job.status == DONE and isinstance(job.result, dict) and job.result.get("after"):
            st.caption(f"Re-indexed in {job.result['reindex_s']:.2f} s; see the experiment's result above.")


watch_job(runner, st.session_state.get("eval_job"), draw_evaluation)

# -- knowledge-update experiment ---------------------------------------------------------------------------
with st.expander("Knowledge-update experiment: the policy changed, who catches up?", icon=":material/update:"):
    st.caption("A support bot once kept saying 60 days after the policy became 30. This replaces a document with its "
               "updated version, re-indexes it (timed), asks the questions about it again and checks them against "
               "the updated answers. RAG catches up as soon as the index does; a fine-tuned adapter only after "
               "retraining on new pairs.")
    docs = {d["name"] for d in index.documents()}
    candidates = sorted({i.source for i in (items or []) if i.source in docs and i.updated_reference})
    if not items:
        st.info("Choose a test set above first.", icon=":material/info:")
    elif not candidates:
        st.info("No indexed document has test questions with an 'updated_reference'. The sample data has one: load "
                "the sample documents on the Documents page and use the sample evaluation set.", icon=":material/info:")
    else:
        doc = st.selectbox("Document that changes", candidates)
        sample_updates = {samples.updated_document(n)[0] for n in ["returns-policy.md"]}
        new_version = None
        if doc in sample_updates and st.radio("Updated version", ["The sample's updated version", "Upload one"],
                                             horizontal=True) == "The sample's updated version":
            new_version = samples.updated_document(doc)
        else:
            up = st.file_uploader(f"Updated {doc}", type=["txt", "md", "pdf", "docx", "html"], key="update_upload")
            if up is not None:
                new_version = (doc, up.getvalue())  # indexed under the old name: it replaces the old version
        subset = update_questions(items, doc)
        st.caption(f"{len(subset)} question(s) about {doc} have an updated answer.")
        xm = st.multiselect("Approaches", list(MODES), default=["rag", "finetuned", "hybrid"],
                            format_func=lambda m: LABELS[m], key="update_modes")
        ad = st.selectbox("Adapter", [a.name for a in adapters] or ["(none yet)"], key="update_adapter")
        c1, c2 = st.columns(2)
        if c1.button("Run the experiment", icon=":material/science:", disabled=new_version is None or
                     bool(job and job.status in ACTIVE)):
            try:
                generator = load_generator(generator_id())
                chosen_ad = next((a for a in adapters if a.name == ad), None)
                runnable = [m for m, r in availability(xm, index=index, adapter=chosen_ad.path if chosen_ad
                                                       else None, model_id=generator.model_id).items() if not r]
                job = runner.submit(
                    "evaluate", ws, f"Knowledge update: {doc}",
                    lambda sink, cancel: knowledge_update(
                        items, ComparisonSpec(tuple(runnable), generator, adapter=chosen_ad,
                                              embedder_id=index.config.embedder_id),
                        workspace=ws, index=index, updated=new_version, progress=sink, cancel=cancel))
                st.session_state["eval_job"] = job.id
                st.session_state.pop("eval_run", None)
                st.rerun()
            except Exception as exc:
                show_error(exc)
        original = {n: b for n, b in samples.sample_documents()}.get(doc)
        if original is not None and c2.button("Restore the original document", icon=":material/restore:"):
            try:
                from workbench.documents import parse_uploads

                index.add_documents(parse_uploads([(doc, original)])[0])
                st.success(f"Restored the original {doc}.", icon=":material/check_circle:")
            except Exception as exc:
                show_error(exc)
    experiments = [r for r in list_eval_runs(ws) if r.experiment]
    if experiments:
        ex = experiments[0].experiment
        used = experiments[0].config.get("adapter")
        st.markdown(f"**Latest result** ({ex['document']}, {ex['questions']} questions"
                    f"{f', adapter {used}' if used else ''})")
        rows = []
        after_verdicts = ex.get("after_verdicts") or {}
        transitions = ex.get("transitions")
        if ex.get("before_run"):  # from both runs as they stand now (either may have been re-judged since)
            try:
                transitions = update_transitions(get_eval_run(ws, ex["before_run"]), experiments[0])
            except (WorkbenchError, OSError, ValueError):  # deleted or damaged: keep what the experiment stored
                pass
        transitions = transitions or {}
        for mode in sorted(set(ex["before_accuracy"]) | set(ex["after_accuracy"])):
            retrieval = uses_passages(mode)
            catch_up = (f"{ex['reindex_s']:.1f} s re-index" if retrieval else
                        (f"{ex['retrain_s']:.0f} s retraining + new pairs"
                         if ex.get("retrain_s") else "retraining on new pairs") if mode not in
                        {"base", "prompted"} else "never (knows no documents)")
            counts = after_verdicts.get(mode, {})
            moved = transitions.get(mode)
            before = ex["before_accuracy"].get(mode)
            rows.append({"Approach": LABELS.get(mode, mode),
                         "Right before": (f"{moved['knew']} of {moved['questions']}" if moved else
                                          f"{before:.0%}" if before is not None else None),
                         "Those, after": (f"{moved['updated']} updated, {moved['stale']} stale, {moved['other']} other"
                                          if moved and moved["knew"] else "none to follow" if moved else None),
                         "Updated": counts.get("correct"), "Stale": counts.get("stale"),
                         "Wrong": counts.get("wrong"), "Partial": counts.get("partial"),
                         "Refused": counts.get("refused"), "Time to catch up": catch_up})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(f"**Right before**: questions answered right against the old answers. **Those, after**: the same "
                   f"questions once the document changed. **Updated** to **Refused**: all {ex['questions']} answers "
                   "after the update, where **updated** gives the new value, **stale** the old one and **wrong** "
                   "another one. Each answer's facts are in the run's per-question table.")
        never = [LABELS.get(m, m) for m, t in transitions.items() if t["questions"] and not t["knew"]]
        if never:
            one = len(never) == 1
            st.caption(f":orange[{', '.join(never)} answered none of these questions right before the update], so "
                       f"{'its' if one else 'their'} verdicts after it cannot show whether {'it goes' if one else 'they go'} "
                       f"stale: {'it' if one else 'they'} never gave the old answers to begin with.")
        st.caption(f"Time to catch up. Re-index: measured, {ex['reindex_s']:.2f} s for {ex['reindexed_chunks']} "
                   f"chunks. Retraining: {ex['retrain_basis']}.")

# -- 3. results --------------------------------------------------------------------------------------------
st.subheader("3. Results")
runs = list_eval_runs(ws)
running = runner.get(st.session_state.get("eval_job") or "")
if not runs and running and running.status in ACTIVE:
    st.info("The evaluation above has started; its results appear here as its questions are answered.",
            icon=":material/hourglass_top:")
    stop_page()
if not runs:
    st.info("No evaluation runs yet: choose a test set and approaches above and press Run evaluation. It needs "
            "documents (Documents page) for RAG and an adapter (Fine-tune page) for the fine-tuned approaches.",
            icon=":material/query_stats:")
    stop_page()


def run_label(r: EvalRun) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
    tag = f" · {r.label}" if r.label else ""
    return f"{when}{tag} · {r.testset.get('name')} · {r.done}/{r.testset.get('count')} questions · {r.status}"


ids = [r.id for r in runs]
default = ids.index(st.session_state["eval_run"]) if st.session_state.get("eval_run") in ids else 0
run_id = st.selectbox("Run", ids, index=default, format_func=lambda i: run_label(next(r for r in runs if r.id == i)))
run = get_eval_run(ws, run_id)
if run.status in {CANCELLED, INTERRUPTED, "failed"}:
    st.caption(f":orange[{run.error or run.status}]")
if not run.results:
    st.info("This run has no finished question yet.", icon=":material/hourglass_top:")
    stop_page()

format_check = run.config.get("format_check") or {}
if (judge_version(run) < JUDGE_VERSION or not format_check.get("origin")) and run.status != RUNNING:
    with st.container(border=True):
        if judge_version(run) < JUDGE_VERSION:
            changes = "; ".join(JUDGE_CHANGES[v] for v in range(judge_version(run) + 1, JUDGE_VERSION + 1))
            st.markdown(f":orange[These verdicts come from an earlier version of the fact judge]: version "
                        f"{judge_version(run)}, and the current one is {JUDGE_VERSION} ({changes}). Re-judge the run "
                        "before you compare it with newer runs; the answers stay as they were, only their verdicts "
                        "change.")
        if not format_check.get("origin"):
            st.markdown(":orange[The format was checked against the sample company's format] (Summary / Answer / "
                        "Sources lines), as every run was before the format was read from each workspace's own "
                        "training pairs. Re-judge the run to check it against yours.")
        if st.button("Re-judge this run", icon=":material/gavel:", key=f"rejudge_{run.id}"):
            try:
                rejudge(ws, run.id)
                st.session_state["eval_run"] = run.id
                st.session_state["rejudged"] = run.id
                st.rerun()
            except Exception as exc:
                show_error(exc)
if st.session_state.get("rejudged") == run.id:
    st.success(f"Re-judged with version {JUDGE_VERSION} of the fact judge: the verdicts below are the current "
               "judge's, for the answers as they were generated.", icon=":material/gavel:")

pricing = pricing_for(ws)
rate_line(st, pricing)
summary = summarize(run, pricing)
config = run.config
st.caption(f"Model `{config['model_id']}` · adapter `{config.get('adapter') or 'none'}` · top {config['retrieval']['top_k']} "
           f"chunks · up to {config['generation']['max_new_tokens']} tokens · greedy "
           f"(seed {config['generation']['seed']}) · {GenerationConfig.penalty_note(config['generation'])} · "
           f"{run.done} questions · "
           f"{len(run.results)} answers")
model_line(config["model_id"])
if format_check.get("origin"):
    shape = " / ".join(format_check.get("lines") or []) or f"matching `{format_check.get('pattern')}`"
    st.caption(f"**Format**: an answer follows it when it is the lines {shape}, one each, in order "
               f"({format_check['origin']}).")
rag_note = run_note(ws, config)
if rag_note and not rag_note[0]:
    st.warning(rag_note[1], icon=":material/tune:")
if run.errors:
    first = next(iter({k: v for k, v in run.errors[0].items() if k != "item_id"}.values()))
    st.warning(f"{len(run.errors)} question(s) had an approach whose backend failed; those answers are missing. "
               f"First error: {first}", icon=":material/cloud_off:")
if run.unavailable:
    st.caption("Skipped: " + "; ".join(f"{LABELS.get(m, m)}: {r}" for m, r in run.unavailable.items()))
if run.leakage:
    st.warning(f"{len(run.leakage)} test question(s) overlap the adapter's training pairs: the fine-tuned scores "
               "partly measure memory.", icon=":material/content_copy:")

table = []
for mode, s in summary.items():
    ci = s.get("correct_answerable_ci")
    table.append({"Approach": s["approach"], "Correct": s.get("correct_answerable"),
                  "95% range": f"{ci[0]:.0%}–{ci[1]:.0%}" if ci else "–", "Questions": s.get("n_answerable"),
                  "Partial": s.get("verdict_partial"), "Wrong": s.get("verdict_wrong"),
                  "Stale": s.get("verdict_stale"), "Refused": s.get("verdict_refused"),
                  "Unscored": s.get("verdict_unscored"), "Declined unanswerable": s.get("declined_unanswerable"),
                  "Unanswerable questions": s.get("n_unanswerable"),
                  "Grounded (facts)": s["grounded"], "Source retrieved": s["retrieved"], "Source cited": s["cited"],
                  "Format": s["format_ok"], "Token F1": s["f1"], "Similarity": s["similarity"],
                  "p50 (s)": s["latency_p50_s"], "p95 (s)": s["latency_p95_s"],
                  "Tokens in / 1k queries": s["tokens_in_per_1k"], "Tokens out / 1k queries": s["tokens_out_per_1k"],
                  "$ / 1k queries": s["cost_per_1k_usd"], "Closer to training pairs": s["closer_to_training"],
                  **({"LLM judge": s["judge"], "Judge cost ($)": s["judge_cost_usd"]} if "judge" in s else {})})
pct = st.column_config.NumberColumn(format="percent")
st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", column_config={
    "Approach": st.column_config.TextColumn(pinned=True),  # stays in view while the measures scroll sideways
    **{k: pct for k in ("Correct", "Partial", "Wrong", "Stale", "Refused", "Unscored", "Declined unanswerable",
                        "Token F1", "Similarity", "Grounded (facts)", "Source retrieved", "Source cited", "Format",
                        "Closer to training pairs", "LLM judge")},
    "Correct": st.column_config.NumberColumn("Correct", format="percent", help=VERDICT_HELP["correct"]),
    "Partial": st.column_config.NumberColumn("Partial", format="percent", help=VERDICT_HELP["partial"]),
    "Wrong": st.column_config.NumberColumn("Wrong", format="percent", help=VERDICT_HELP["wrong"]),
    "Stale": st.column_config.NumberColumn("Stale", format="percent", help=VERDICT_HELP["stale"]),
    "Refused": st.column_config.NumberColumn("Refused", format="percent", help=VERDICT_HELP["refused"]),
    "Unscored": st.column_config.NumberColumn("Unscored", format="percent", help=VERDICT_HELP["unscored"]),
    # Engineering measures keep their names and explain themselves in a tooltip (the Glossary has them all).
    "Token F1": st.column_config.NumberColumn(format="percent", help=TERMS["Token F1"]),
    "Similarity": st.column_config.NumberColumn(format="percent", help="Embedding similarity of the answer to the "
                                                "expected one: close wording scores high even with a wrong figure."),
    "Grounded (facts)": st.column_config.NumberColumn(format="percent", help=TERMS["Grounded"]),
    "Format": st.column_config.NumberColumn(format="percent", help=TERMS["Follows the format"]),
    "Questions": st.column_config.NumberColumn(help="Answerable questions behind the Correct share."),
    "Unanswerable questions": st.column_config.NumberColumn(
        help="Questions the documents cannot answer, behind the Declined unanswerable share."),
    "Judge cost ($)": st.column_config.NumberColumn(format="$%.4f"),
    "p50 (s)": st.column_config.NumberColumn(format="%.2f", help="Median seconds to a full answer."),
    "p95 (s)": st.column_config.NumberColumn(format="%.2f", help="19 answers in 20 were faster than this."),
    "Tokens in / 1k queries": st.column_config.NumberColumn(format="%.0f", help="Tokens read per 1,000 questions (the mean per question "
                                                    "times 1,000). " + TERMS["Token"]),
    "Tokens out / 1k queries": st.column_config.NumberColumn(format="%.0f", help="Tokens written per 1,000 questions (the mean per "
                                                     "question times 1,000)."),
    "$ / 1k queries": st.column_config.NumberColumn(format="$%.4f")})
st.caption("Verdicts are per answer, on the questions the documents answer: **correct** holds every key fact of the "
           "reference (numbers with units, dates, codes, names, a leading yes/no) and contradicts none; the 95% range "
           "is a Wilson interval over that many questions. **Declined unanswerable**: the share of questions the "
           "documents cannot answer where the approach said so. Grounded: share of the answer's facts found in the "
           "passages it was given (empty for approaches given none). Token F1 and similarity are kept as secondary "
           "columns: they score \"45 days\" as close to \"30 days\". A cell showing None: the metric does not apply to "
           "that approach (grounding, for one without passages).")
st.caption("How sure the verdicts are: on 277 answers labelled by hand against the sample, the judge agrees with the "
           "label on 267 (0.96): 206 of 210 answers written for the test, 61 of 67 real answers of the packaged 135M "
           "model (judge version 5, 2026-12-05; `tests/test_verdicts.py`, `bench/quality.py`'s judge_accuracy). On "
           "first sight of two tables written after it, it had agreed on 54 of 57 and 54 of 67. It misses what facts "
           "cannot show, such as two values swapped between their roles, or the right figure in the wrong sentence. "
           "Each answer's facts are listed in the per-question table below, so any verdict can be checked.")
agreement = judge_agreement(run)
if agreement:
    st.markdown(f"**LLM judge agrees with the verdicts on {agreement['agree']} of {agreement['n']} answers "
                f"({agreement['share']:.0%})**")
    if agreement["disagreements"]:
        with st.expander(f"The {len(agreement['disagreements'])} disagreements"):
            st.dataframe(pd.DataFrame(agreement["disagreements"]), hide_index=True, width="stretch")

shown_metrics = {"grounded": "Grounded (facts)", "cited": "Source cited", "format_ok": "Format",
                 "declined_unanswerable": "Declined unanswerable", "f1": "Token F1"}
few_unanswerable = min((s.get("n_unanswerable") or 0) for s in summary.values()) < MIN_UNANSWERABLE
if few_unanswerable:  # a share of one or two questions would stand as tall as one of fifty
    shown_metrics.pop("declined_unanswerable")
    st.caption(f"Declined unanswerable is left out of the chart: fewer than {MIN_UNANSWERABLE} unanswerable "
               "questions were asked (the table gives the count).")
with_acc = {m: dict(s, correct=s.get("correct_answerable")) for m, s in summary.items()}
st.plotly_chart(metric_bars_chart(with_acc, {"correct": "Correct", **shown_metrics}, LABELS), width="stretch")
quality_name = st.radio("Quality measure for the trade-off charts", ["Correct", "Token F1", "Similarity", "Format"],
                        horizontal=True)
key = {"Correct": None, "Token F1": "f1", "Similarity": "similarity", "Format": "format_ok"}[quality_name]
quality = ({m: s.get("correct_answerable") for m, s in summary.items()} if key is None
           else {m: s[key] for m, s in summary.items()})
evidence_n = min((s.get("n_answerable") or 0) if key is None else run.done for s in summary.values())
enough = dict(evidence_n=evidence_n, min_n=MIN_QUESTIONS)
a, b = st.columns(2)
if all(s["cost_per_1k_usd"] == 0 for s in summary.values()):
    a.plotly_chart(tradeoff_chart(summary, quality, "machine_s_per_answer", "Machine seconds per answer", quality_name,
                                  LABELS, f"{quality_name} vs compute", **enough), width="stretch")
    a.caption("Every local answer costs $0 on a machine you already own, so compute time stands in for cost; "
              "choose the hardware you would deploy on (Costs page) to see dollars.")
else:
    a.plotly_chart(tradeoff_chart(summary, quality, "cost_per_1k_usd", "Cost per 1,000 queries (US$)", quality_name,
                                  LABELS, f"{quality_name} vs cost", **enough), width="stretch")
b.plotly_chart(tradeoff_chart(summary, quality, "latency_p50_s", "Median latency (s)", quality_name, LABELS,
                              f"{quality_name} vs latency", **enough), width="stretch")
st.caption(f"★ marks the Pareto front: no other approach is both cheaper (or faster) and better. It is marked from "
           f"{MIN_QUESTIONS} questions on"
           + (f"; this run has {evidence_n}, not enough evidence yet." if evidence_n < MIN_QUESTIONS else "."))
st.plotly_chart(latency_box_chart(run.results, LABELS), width="stretch")

st.markdown("**Per question**")
only = st.toggle("Only questions where the approaches disagree")
rows = per_question(run)
if only:
    rows = [r for r in rows if r["disagree"]]
shown = [{k: v for k, v in r.items() if not k.endswith("_correct")} for r in rows]
headers = {"id": "Id", "question": "Question", "reference": "Expected answer", "answerable": "Answerable",
           "disagree": "Verdicts differ"} | {
    f"{m}_{part}": f"{LABELS.get(m, m)}{suffix}" for m in run.modes
    for part, suffix in (("answer", ""), ("verdict", ": verdict"), ("why", ": why"))}
st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch", height=min(500, 40 + 35 * max(1, len(rows))),
             column_config={k: st.column_config.TextColumn(v) if k != "answerable" and k != "disagree"
                            else st.column_config.CheckboxColumn(v) for k, v in headers.items()})
st.caption("Each approach's verdict and why: the key facts found, missing, contradicted or stale.")

if len(runs) > 1:
    with st.expander("Compare with another run"):
        other_id = st.selectbox("Other run", [i for i in ids if i != run_id],
                                format_func=lambda i: run_label(next(r for r in runs if r.id == i)))
        other = get_eval_run(ws, other_id)
        st.dataframe(pd.DataFrame(compare_runs(other, run, pricing)), hide_index=True, width="stretch",
                     column_config={"run_a": st.column_config.NumberColumn("Other run", format="%.3f"),
                                    "run_b": st.column_config.NumberColumn("This run", format="%.3f"),
                                    "change": st.column_config.NumberColumn("Change", format="%+.3f")})

d1, d2, d3 = st.columns(3)
flat = result_rows(run)
d1.download_button("Download answers (CSV)", csv_bytes(flat, list(pd.DataFrame(flat).columns)),
                   f"evaluation-{run_id}.csv", "text/csv", icon=":material/download:")
d2.download_button("Download the run (JSON)", paths.portable(json.dumps(run.to_dict(), indent=2).encode()), f"evaluation-{run_id}.json",
                   "application/json", icon=":material/download:")
d3.download_button("Download the report (HTML)", evaluation_report(run, pricing).encode(), f"evaluation-{run_id}.html",
                   "text/html", icon=":material/download:", help="One self-contained file with the charts; opens "
                   "in any browser, offline.")
