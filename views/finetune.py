"""Fine-tune: training pairs in, a LoRA/QLoRA adapter out, with a live loss chart; adapters; before/after."""

import json
import time
from datetime import datetime

import pandas as pd
import streamlit as st

from workbench import models, samples
from workbench.charts import loss_chart, training_score_chart
from workbench.eval_runs import list_eval_runs
from workbench.eval_summary import rag_score_on
from workbench.config import DEFAULT_GENERATOR, TrainConfig, help_for
from workbench.errors import ConfigError
from workbench.index import open_index
from workbench.prompts import load_prompts
from workbench.estimates import training_estimate
from workbench.raft import RAFT_PRESETS
from workbench.runtime import training_precision
from workbench.formats import FormatCheck, workspace_check
from workbench.jobs import ACTIVE, CANCELLED, DONE, get_runner, job_history
from workbench.pairs import csv_columns, guess_csv_mapping, read_pairs
from workbench.training import (
    adapter_path, before_after, delete_adapter, get_adapter, length_report, list_adapters, rename_adapter, resolve_method, train_adapter,
    zip_adapter,
)
from workbench.ui.common import StatusSink, generator_id, job_header, md_escape, show_error, workspace
from workbench.ui.jobs import adopt_job, cancel_button, progress_line, refresh_once, watch_job

st.title("Fine-tune")
st.caption(
    "Teach the model how to answer (format, tone) from example question-answer pairs. Training makes a small "
    "LoRA adapter on top of the local model; the base model itself never changes."
)
runner = get_runner()
ws = workspace()
adopt_job(runner, ws, "train", "train_job")
base_model = generator_id()
if models.is_remote(base_model):
    st.warning(f"This workspace answers with `{base_model}`, which runs on another server: training needs a local "
               "base model. Choose one on the Settings page (the packaged SmolLM2 trains on any laptop).",
               icon=":material/cloud:")
    st.page_link("views/settings.py", label="Choose a local model", icon=":material/settings:")
    base_model = None

# -- 1. training data ---------------------------------------------------------------------------
st.subheader("1. Training pairs")
# The sample's pairs are the default only in a workspace on the sample company; a choice and an upload are
# kept for this browser session (a page's widgets forget them when another page is opened).
source_options = ["The sample company's pairs", "Upload a file"]
on_sample = samples.looks_like_sample(d["name"] for d in open_index(ws).documents())
remembered = st.session_state.get(f"ft_source_{ws}")
source = st.radio("Where are the pairs?", source_options, horizontal=True,
                  index=source_options.index(remembered) if remembered in source_options else 0 if on_sample else 1)
st.session_state[f"ft_source_{ws}"] = source
pairs, report, upload = None, None, None
try:
    if source == "Upload a file":
        uploaded = st.file_uploader(
            "Training pairs", type=["jsonl", "json", "csv"],
            help="OpenAI chat JSONL ('messages'), Alpaca JSONL ('instruction'/'input'/'output'), "
                 "'prompt'/'completion' JSONL, or CSV with a prompt and an answer column.")
        if uploaded is not None:
            upload = st.session_state[f"ft_upload_{ws}"] = (uploaded.name, uploaded.getvalue())
        elif (upload := st.session_state.get(f"ft_upload_{ws}")) is not None:
            st.caption(f"Using {md_escape(upload[0])}, uploaded earlier; upload another file to replace it.")
        if upload is not None:
            name, data = upload
            mapping = None
            if name.lower().endswith(".csv"):
                columns = csv_columns(name, data)
                guess = guess_csv_mapping(columns)
                c1, c2, c3 = st.columns(3)
                options = ["(none)"] + columns
                pick = lambda label, key: c.selectbox(label, options,  # noqa: E731
                                                      index=options.index(guess[key]) if guess[key] else 0)
                c = c1
                prompt_col = pick("Prompt column", "prompt")
                c = c2
                answer_col = pick("Answer column", "completion")
                c = c3
                system_col = pick("System prompt column (optional)", "system")
                mapping = {"prompt": None if prompt_col == "(none)" else prompt_col,
                           "completion": None if answer_col == "(none)" else answer_col,
                           "system": None if system_col == "(none)" else system_col}
            pairs, report = read_pairs(name, data, mapping=mapping)
    else:
        path = samples.sample_dir() / "training_pairs.jsonl"
        pairs, report = read_pairs(path.name, path.read_bytes())
except Exception as exc:
    show_error(exc)

if report is not None:
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Rows read", report.rows_read)
    m2.metric("Usable pairs", report.usable)
    m3.metric("Rejected rows", len(report.rejected))
    m4.metric("Duplicates dropped", report.duplicates)
    st.caption(f"Format: {report.format}")
    if report.rejected:
        st.warning(f"{len(report.rejected)} row(s) could not be used:", icon=":material/warning:")
        st.dataframe(pd.DataFrame(report.rejected, columns=["Line", "Problem"]), hide_index=True, width="stretch")
        if not st.checkbox(f"Train on the {report.usable} good rows anyway", key="keep_good_rows"):
            pairs = None
    if pairs:
        st.download_button(
            "Download these pairs for OpenAI fine-tuning (JSONL)",
            "".join(json.dumps(p.to_chat(), ensure_ascii=False) + "\n" for p in pairs).encode("utf-8"),
            "training_pairs.openai.jsonl", "application/jsonl", icon=":material/download:",
            help="The validated pairs in OpenAI's chat fine-tuning format. A model fine-tuned there (ft:...) can be "
                 "used here as openai:ft:... for the fine-tuned approach.")
        try:
            ss = st.session_state
            shown_passages = int(ss.get("ft_passages", 1)) if ss.get("ft_with_context") else 0
            lengths = length_report(pairs, TrainConfig(max_length=int(ss.get("ft_max_length", 256)),
                                                       val_fraction=float(ss.get("ft_val", 0.1)),
                                                       context_passages=shown_passages,
                                                       context_sentences=int(ss.get("ft_sentences", 0)),
                                                       distractor_share=float(ss.get("ft_distractors", 0.05))),
                                    base_model=base_model or DEFAULT_GENERATOR, index=open_index(ws),
                                    prompts=load_prompts(ws))
            shown_as = (f"with {shown_passages} retrieved passage(s) each, as retrieval-aware training shows them"
                        if lengths["with_passages"] else "prompt + answer")
            st.caption(
                f"Tokens per pair ({shown_as}): min {lengths['min']}, median {lengths['median']:.0f}, "
                f"95th percentile {lengths['p95']}, max {lengths['max']}, against a max length of "
                f"{lengths['max_length']}. Split (seeded): {lengths['train_pairs']} for training, "
                f"{lengths['val_pairs']} held out for validation."
            )
            if lengths["over_max"]:
                share = lengths["over_max"] / len(pairs)
                msg = (f"{lengths['over_max']} pair(s) ({share:.0%}) are longer than the max length of "
                       f"{lengths['max_length']} tokens: choose below whether to truncate or drop them.")
                (st.error if share > 0.5 else st.warning)(
                    msg + (" That is most of them: raise the max length." if share > 0.5 else ""),
                    icon=":material/warning:")
        except Exception as exc:
            show_error(exc)
    with st.expander("Preview the pairs (first 50)"):
        st.dataframe(pd.DataFrame([{"Line": p.line, "Question": p.question, "Answer": p.completion}
                                   for p in (pairs or [])[:50]]), hide_index=True, width="stretch")
elif source == "Upload a file" and upload is None:  # a file that was refused has its error above
    st.info("Upload a training file, or use the sample company's pairs.", icon=":material/info:")

# -- 2. settings and start ------------------------------------------------------------------------
st.subheader("2. Train an adapter")
if base_model:
    st.caption(f"Base model: `{base_model}` (this workspace's model; change it on the Settings page). An adapter works "
               "only on the model it was trained on.")
d = TrainConfig()
train_index = open_index(ws)
index_docs = train_index.documents()
with st.spinner("Loading the training libraries (a few seconds on the first visit)..."):
    import torch  # noqa: E402  (only to tell the user which method 'auto' will pick)

cuda = torch.cuda.is_available()


def fill_from_preset() -> None:
    """Turning retrieval-aware training on or off, or picking its preset, fills in the settings it starts
    from (the epochs and max length too: prompts with passages are several times longer)."""
    preset = RAFT_PRESETS[st.session_state.get("ft_raft_preset") or "quick"].config
    base = preset if st.session_state.get("ft_with_context") else d
    st.session_state.update(ft_epochs=float(base.epochs), ft_max_length=int(base.max_length),
                            ft_dropout=float(base.dropout), ft_batch=int(base.batch_size),
                            ft_passages=int(max(1, preset.context_passages)), ft_sentences=int(preset.context_sentences),
                            ft_distractors=float(preset.distractor_share), ft_top_layers=int(preset.top_layers))


# Streamlit forgets a page's widget values when another page is opened: the training setup is kept here, so
# coming back shows the setup one left (not a plain adapter with a new name, one click from training).
_KEPT = ("ft_with_context", "ft_raft_preset", "ft_epochs", "ft_max_length", "ft_dropout", "ft_batch", "ft_passages",
         "ft_sentences", "ft_distractors", "ft_top_layers", "ft_val", "ft_name")
for key, value in st.session_state.get("ft_kept", {}).items():
    if key not in st.session_state:
        st.session_state[key] = value
if "ft_epochs" not in st.session_state or "ft_batch" not in st.session_state:
    fill_from_preset()
# Outside the form, so the retrieval-aware settings below open and close with it.
with_context = st.toggle(
    "Train with retrieved passages (retrieval-aware, for the hybrid)", key="ft_with_context", on_change=fill_from_preset,
    help="Each pair's prompt gets the passages this workspace's index retrieves for its question, in the "
         "hybrid's own prompt format, so the adapter learns to take its facts from them; a share of pairs gets "
         "only unrelated passages and learns to say the documents do not answer. Needs indexed documents.")
if with_context:
    preset_key = st.radio("Start from", list(RAFT_PRESETS), format_func=lambda k: RAFT_PRESETS[k].label,
                          key="ft_raft_preset", horizontal=True, on_change=fill_from_preset,
                          help="Fills in the settings below; change any of them before you start.")
    st.caption("Measured on the sample company's data (your pairs will differ; the time estimate below is "
               "this workspace's own once it has trained): " + RAFT_PRESETS[preset_key].measured)
with st.form("train_settings", enter_to_submit=False):
    st.session_state.setdefault("ft_name", time.strftime("house-style-%m%d-%H%M"))
    name = st.text_input("Adapter name", key="ft_name", help="Letters, digits, '.', '_' or '-'.")
    c1, c2, c3, c4 = st.columns(4)
    method = c1.selectbox("Method", ["auto", "lora", "qlora"], help=help_for(TrainConfig, "method"))
    epochs = c2.number_input("Epochs", 0.5, 20.0, step=0.5, key="ft_epochs", help=help_for(TrainConfig, "epochs"))
    lr = c3.number_input("Learning rate", 1e-5, 1e-2, d.learning_rate, format="%.5f",
                         help=help_for(TrainConfig, "learning_rate"))
    batch = c4.number_input("Batch size", 1, 32, key="ft_batch", help=help_for(TrainConfig, "batch_size"))
    c5, c6, c7, c8 = st.columns(4)
    rank = c5.number_input("LoRA rank", 1, 128, d.rank, help=help_for(TrainConfig, "rank"))
    alpha = c6.number_input("LoRA alpha", 1, 512, d.alpha, help=help_for(TrainConfig, "alpha"))
    dropout = c7.number_input("LoRA dropout", 0.0, 0.5, step=0.01, key="ft_dropout", help=help_for(TrainConfig, "dropout"))
    max_length = c8.number_input("Max length (tokens)", 32, 2048, step=32, key="ft_max_length",
                                 help=help_for(TrainConfig, "max_length"))
    c9, c10, c11, c12 = st.columns(4)
    targets = c9.text_input("Target modules", d.target_modules, help=help_for(TrainConfig, "target_modules"))
    st.session_state.setdefault("ft_val", float(d.val_fraction))
    val_fraction = c10.number_input("Validation share", 0.0, 0.5, step=0.05, key="ft_val",
                                    help=help_for(TrainConfig, "val_fraction"))
    overflow = c11.selectbox("Pairs over max length", ["truncate", "drop"], help=help_for(TrainConfig, "overflow"))
    seed = c12.number_input("Seed", 0, 10_000, d.seed, help=help_for(TrainConfig, "seed"))
    precision = c9.selectbox("Precision", ["auto", "bf16", "fp32"], help=help_for(TrainConfig, "precision"))
    st.markdown("**Retrieval-aware training** (for the hybrid): " + ("on, with these settings" if with_context else
                "off (switch it on above the form to set it up)"))
    r2, r3, r4, r5 = st.columns(4)
    passages = r2.number_input("Passages per pair", 1, 10, key="ft_passages", disabled=not with_context,
                               help=help_for(TrainConfig, "context_passages"))
    sentences = r3.number_input("Sentences per passage (0: all)", 0, 20, key="ft_sentences", disabled=not with_context,
                                help=help_for(TrainConfig, "context_sentences"))
    distractors = r4.number_input("Distractor share", 0.0, 0.5, step=0.05, key="ft_distractors", disabled=not with_context,
                                  help=help_for(TrainConfig, "distractor_share"))
    top_layers = r5.number_input("Layers adapted (top N; 0: all)", 0, 512, key="ft_top_layers", disabled=not with_context,
                                 help=help_for(TrainConfig, "top_layers") + " Used with retrieved passages only.")
    if not index_docs:
        st.caption(":orange[No documents are indexed in this workspace yet: retrieval-aware training needs them "
                   "(Documents page).]")
    score_n = st.number_input(
        "Score after each epoch on this many sample test questions (0: off)", 0, 20, 0, disabled=not on_sample,
        help="After every epoch the adapter answers the first answerable questions of the sample evaluation set; "
             "the share it gets right is drawn against RAG's score on the same questions (from your latest "
             "evaluation run). Costs about 5 s per question per epoch on a laptop CPU." +
             ("" if on_sample else " Off here: the questions are the sample company's, and this workspace's "
                                   "documents are not."))
    start = st.form_submit_button("Start training", icon=":material/model_training:", type="primary",
                                  disabled=pairs is None or base_model is None)
st.session_state["ft_kept"] = {k: st.session_state[k] for k in _KEPT if k in st.session_state}
st.caption(f"With 'auto': {resolve_method(TrainConfig(), cuda)[1]} {training_precision('auto', cuda)[1]}")
if pairs is not None and base_model:
    try:
        planned = TrainConfig(epochs=float(epochs), batch_size=int(batch), max_length=int(max_length),
                              val_fraction=float(val_fraction), top_layers=int(top_layers) if with_context else 0,
                              context_passages=int(passages) if with_context else 0,
                              context_sentences=int(sentences), distractor_share=float(distractors),
                              dropout=float(dropout))
        median = length_report(pairs, planned, base_model=base_model, index=train_index,
                               prompts=load_prompts(ws))["median"]
        estimate = training_estimate(ws, len(pairs), median, planned, base_model,
                                     training_precision(precision, cuda)[0])
        running = runner.get(st.session_state.get("train_job") or "")
        if estimate:
            st.caption(f"Estimated training time: {estimate.text()}.")
        elif running is None or running.status not in ACTIVE:  # while one runs, its progress says the time left
            st.caption("No adapter has been trained this way in this workspace yet, so there is no measured speed "
                       "to estimate from: the progress shows the time left once training starts."
                       + (" Retrieved passages make prompts several times longer." if with_context else ""))
    except Exception:  # the settings are checked when training starts
        pass

if start and pairs is not None and base_model:
    try:
        config = TrainConfig(method=method, rank=int(rank), alpha=int(alpha), dropout=float(dropout), precision=precision,
                             target_modules=targets, epochs=float(epochs), learning_rate=float(lr),
                             max_length=int(max_length), batch_size=int(batch), seed=int(seed),
                             val_fraction=float(val_fraction), overflow=overflow,
                             top_layers=int(top_layers) if with_context else 0,
                             context_passages=int(passages) if with_context else 0,
                             context_sentences=int(sentences), distractor_share=float(distractors))
        if with_context and not index_docs:
            raise ConfigError("Retrieval-aware training needs indexed documents: add them on the Documents page.")
        chosen = name.strip()
        score_items = None
        if score_n:
            from workbench.evaluation import read_testset

            path = samples.sample_dir() / "eval_set.jsonl"
            score_items = [i for i in read_testset(path.name, path.read_bytes())[0] if i.answerable][: int(score_n)]
        job = runner.submit("train", ws, f"Train adapter {chosen}",
                            lambda sink, cancel: train_adapter(pairs, config, workspace=ws, name=chosen,
                                                               base_model=base_model,
                                                               progress=sink, cancel=cancel, score_items=score_items,
                                                               index=train_index, prompts=load_prompts(ws)))
        st.session_state["train_job"] = job.id
    except Exception as exc:
        show_error(exc)

job_id = st.session_state.get("train_job")


def draw_training(job) -> None:
    with st.container(border=True):
        job_header(runner, job, "One training runs at a time; Cancel below stops waiting.")
        last = next((e for e in reversed(job.events) if e.stage == "train"), None)
        if last is None:  # still preparing (loading, retrieving passages): its own progress, no step counts yet
            progress_line(job)
        else:
            progress_line(job, last)
            m = last.metrics
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Step", f"{last.step} / {last.total or '?'}")
            c2.metric("Epoch", f"{m.get('epoch', 0):.2f}")
            c3.metric("Speed (tokens/s)", f"{m.get('tokens_per_s', 0):.0f}")
            c4.metric("Time left", f"{m.get('eta_s', 0):.0f} s" if "eta_s" in m and job.status in ACTIVE else "–")
        history = [{"step": e.step, **e.metrics} for e in job.events if e.stage == "train" and e.metrics]
        if history:
            st.plotly_chart(loss_chart(history), width="stretch", key=f"loss-{job.id}-{len(history)}")
        if any("eval_score" in h for h in history):
            st.plotly_chart(training_score_chart(history), width="stretch", key=f"score-{job.id}-{len(history)}")
        if job.status in ACTIVE:
            cancel_button(runner, job, "Cancel training")
        elif job.status == DONE:
            saved = job.result
            st.success(f"Saved adapter **{saved.name}** in {saved.wall_s or 0:.0f} s "
                       f"({saved.steps} steps, final training loss {saved.final_train_loss or 0:.3f}).",
                       icon=":material/check_circle:")
            refresh_once(job, "train_job_refreshed")  # show the new adapter in the list below
        elif job.status == CANCELLED:
            st.warning("Training was cancelled; no adapter was saved.", icon=":material/cancel:")
        else:
            st.error(job.error or "Training failed.", icon=":material/error:")


watch_job(runner, job_id, draw_training)

# -- 3. adapters ---------------------------------------------------------------------------------------
st.subheader("3. Adapters")
adapters = list_adapters(ws)
interrupted = [j for j in job_history(ws) if j["status"] == "interrupted" and j["kind"] == "train"]
if interrupted:
    st.caption(f"{len(interrupted)} training job(s) were interrupted by a server restart; no adapter was kept from them.")
if not adapters:
    st.info("No adapters yet: train one above. It appears here when training completes.", icon=":material/info:")
else:
    st.dataframe(pd.DataFrame([{
        "Name": a.name, "Base model": a.base_model, "Method": a.method,
        "Trained on": (f"questions + {a.retrieval_aware.get('passages')} retrieved passages"
                       if a.retrieval_aware else "bare questions"),
        "Pairs": a.train_pairs, "Epochs": a.config.get("epochs"), "Steps": a.steps,
        "Rank": a.config.get("rank"), "Train time (s)": a.wall_s, "Train loss": a.final_train_loss,
        "Val loss": a.final_val_loss, "Device": a.device, "Precision": a.precision,
        "Created": datetime.fromtimestamp(a.created_at),
    } for a in adapters]), hide_index=True, width="stretch",
        column_config={"Name": st.column_config.TextColumn(pinned=True),
                       "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                       "Train loss": st.column_config.NumberColumn(format="%.3f", help="At the end of training."),
                       "Val loss": st.column_config.NumberColumn(format="%.3f",
                                                                 help="On the held-out pairs, at the end.")})
    chosen = st.selectbox("Adapter", [a.name for a in adapters], key="adapter_selected")
    picked = next(a for a in adapters if a.name == chosen)
    col_a, col_b = st.columns(2, gap="large")
    with col_a:
        with st.expander("Metadata (base model, data hash, full config)"):
            st.json(picked.details(), expanded=False)
        history = picked.history
        if history:
            st.plotly_chart(loss_chart(history, f"Loss while training {chosen}"), width="stretch")
        if any("eval_score" in h for h in history):
            ids = picked.score_ids
            rag, note = None, ""
            for run in list_eval_runs(ws):
                rag = rag_score_on(run, ids)
                if rag is not None:
                    note = f"evaluation run of {time.strftime('%Y-%m-%d %H:%M', time.localtime(run.created_at))}"
                    break
            st.plotly_chart(training_score_chart(history, rag, note), width="stretch")
            if rag is None:
                st.caption("Run an evaluation with RAG on the sample set to draw RAG's score on the same questions.")
    with col_b:
        new_name = st.text_input("Rename to", value=chosen, key="adapter_new_name")
        if st.button("Rename", icon=":material/edit:") and new_name != chosen:
            try:
                rename_adapter(ws, chosen, new_name.strip())
                st.rerun()
            except Exception as exc:
                show_error(exc)
        if st.button("Prepare zip download", icon=":material/folder_zip:"):
            try:
                st.download_button(f"Download {chosen}.zip", zip_adapter(ws, chosen), file_name=f"{chosen}.zip",
                                   mime="application/zip", icon=":material/download:")
            except Exception as exc:
                show_error(exc)
        st.caption("A standard PEFT folder: loadable with PeftModel.from_pretrained and by vLLM's --lora-modules.")
        confirm = st.checkbox(f"Yes, delete {chosen}", key="adapter_delete_confirm")

        def _delete(adapter: str) -> None:  # a callback runs before the page is drawn: it may reset the box
            try:
                delete_adapter(ws, adapter)
                st.toast(f"Deleted adapter {adapter}.")
            except Exception as exc:
                st.session_state["adapter_delete_error"] = exc
            st.session_state["adapter_delete_confirm"] = False

        st.button("Delete adapter", icon=":material/delete:", disabled=not confirm, on_click=_delete, args=(chosen,))
        error = st.session_state.pop("adapter_delete_error", None)
        if error is not None:
            show_error(error)

    # -- 4. before / after ------------------------------------------------------------------------------
    st.subheader("4. Before and after")
    trained_on = get_adapter(ws, chosen).base_model
    st.caption(f"The adapter's held-out validation prompts, answered by the base model it was trained on "
               f"(`{trained_on}`) and by the adapter (greedy). A format check decides which answers follow the "
               "trained format.")
    default_check, check_origin = workspace_check(ws, adapter_path(ws, chosen))
    held_out = len(get_adapter(ws, chosen).val_prompts)
    with st.form(f"before_after_{chosen}"):
        kind = st.radio("Format check", ["Regular expression", "Required lines"], horizontal=True)
        pattern = st.text_input("Regular expression the whole answer must match", value=default_check.pattern)
        lines = st.text_input("Required line prefixes, in order (comma separated)",
                              value=", ".join(default_check.lines))
        st.caption(f"Filled in from {check_origin}.")
        n = st.slider("Prompts", 1, max(held_out, 2), min(5, max(held_out, 1)), disabled=held_out < 2,
                      help=f"The adapter kept {held_out} held-out prompt(s).")
        go = st.form_submit_button("Compare base and adapter", icon=":material/compare:")
    if go:
        try:
            check = (FormatCheck("regex", pattern) if kind == "Regular expression"
                     else FormatCheck("lines", lines=tuple(x.strip() for x in lines.split(",") if x.strip())))
            with st.status("Generating answers...", expanded=False) as status:
                result = before_after(ws, chosen, check, n=n, progress=StatusSink(status))
                status.update(label="Done", state="complete")
            total = len(result["rows"])
            c1, c2 = st.columns(2)
            c1.metric(f"Follow the format: {trained_on}", f"{sum(r['base_ok'] for r in result['rows'])} of {total}")
            c2.metric(f"Follow the format: {chosen}", f"{sum(r['adapter_ok'] for r in result['rows'])} of {total}")
            st.caption(f"On {total} held-out prompt(s). This checks the format only, not whether an answer is "
                       "right (the Evaluate page judges that, and compares against a base model that is told the "
                       "format: the Prompted approach).")
            for row in result["rows"]:
                with st.container(border=True):
                    prompt = row["question"]
                    context, _, question = prompt.rpartition("Question:")
                    st.markdown(f"**{md_escape((question if context else prompt).strip(), 300)}**")
                    if context.strip():
                        with st.expander("Passages in the prompt (as in training)"):
                            st.text(context.strip())
                    b, a = st.columns(2)
                    verdict = lambda ok: (":green[:material/check_circle: follows the format]" if ok  # noqa: E731
                                          else ":red[:material/cancel: does not follow the format]")
                    b.markdown(f"{trained_on} · {verdict(row['base_ok'])}")
                    b.text(row["base"])
                    a.markdown(f"{chosen} · {verdict(row['adapter_ok'])}")
                    a.text(row["adapter"])
        except Exception as exc:
            show_error(exc)
