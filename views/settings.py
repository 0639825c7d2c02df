"""Settings: the workspace's model (packaged, hub, local file or folder, or a server), and API backends
(OpenAI and any OpenAI-compatible server), checked with one click."""

import pandas as pd
import streamlit as st

from workbench import model_choice, models, servers
from workbench.generation.openai_compat import resolve_api_key
from workbench.jobs import ACTIVE, DONE, get_runner
from workbench.ui.common import job_header, md_escape, server_field, show_error, workspace
from workbench.ui.jobs import adopt_job, cancel_button, progress_line, refresh_once, watch_job

st.title("Settings")
ws = workspace()

st.subheader("Model")
info = model_choice.describe(ws)
st.markdown(f"This workspace answers, trains and records with **{md_escape(info['model_id'], 200)}**"
            + (f" (chosen {info['chosen_at'].replace('T', ' ')})." if info["chosen_at"] else " (the default).")
            + f" {info['note']}")
st.caption("Every approach (base, prompted, RAG, fine-tuned, hybrid) uses this model, the Fine-tune page trains on it, "
           "and each answer and adapter records it. An adapter works only on the model it was trained on.")
if info["decode"]:
    st.caption(info["decode"])
rows = model_choice.recommended_status()
OTHER = "(another model: type its id)"
if servers.restricted():  # workshop mode: the packaged models and the operator's servers only, nothing typed
    options = [r["model_id"] for r in rows if r["present"] and not models.find_entry("generator", r["model_id"]).is_prefix]
    options += [s.id for s in servers.allowed("generator") if s.id not in options]
else:
    options = [r["model_id"] for r in rows] + [OTHER]
names = {r["model_id"]: f"{r['name']} · {r['hardware']} · {'here' if r['present'] else 'not on this machine'}"
         for r in rows}
current = info["model_id"]
index = options.index(current) if current in options else (len(options) - 1 if OTHER in options else 0)
picked = st.selectbox("Model", options, index=index, key="model_pick",
                      format_func=lambda m: names.get(m) or servers.name_for("generator", m) or m)
if picked == OTHER:
    typed = st.text_input("Model id", value="" if current in names else current, key="model_typed",
                          placeholder="hf:ORG/NAME · hf:/path/to/folder · hf:/path/to/model.gguf · compat:URL#MODEL · "
                                      "openai:MODEL", max_chars=500)
    picked = typed.strip()
row = next((r for r in rows if r["model_id"] == picked), None)
if row:  # a shared server keeps its paths to itself
    where = "" if servers.restricted() else f" Weights: {md_escape(row['where'], 200)}"
    st.caption(f"{row['size']}. Speed: {row['speed']}. {row['note']}{where}")
runner = get_runner()
c1, c2 = st.columns(2)
if c1.button("Use this model", icon=":material/check:", type="primary", disabled=not picked or picked == current):
    try:
        chosen = model_choice.choose(ws, picked)
        st.session_state["model_chosen"] = chosen
        st.rerun()
    except Exception as exc:
        show_error(exc)
if (chosen := st.session_state.pop("model_chosen", None)):
    st.success(f"This workspace now uses {md_escape(chosen, 200)}. It loads on first use; adapters trained on "
               "another model are listed but refused on Compare and Evaluate.", icon=":material/check_circle:")
hub = model_choice.hub_download_id(picked)
job = runner.get(adopt_job(runner, ws, "download", "download_job") or "")
if hub and not servers.restricted():
    try:
        here = models.locate("generator", picked).present
    except Exception:
        here = False
    if not here and c2.button("Download from the Hugging Face hub", icon=":material/download:",
                              disabled=bool(job and job.status in ACTIVE)):
        job = runner.submit("download", ws, f"Download {hub}",
                            lambda sink, cancel, model=picked: model_choice.download(model, sink, cancel))
        st.session_state["download_job"] = job.id


def draw_download(job) -> None:
    with st.container(border=True):
        job_header(runner, job, "Downloads wait behind trainings and evaluations on this server.")
        if job.status in ACTIVE:
            progress_line(job, starting="Contacting the hub...")
        cancel_button(runner, job, "Cancel download")
        if job.status == DONE:
            st.success(f"{job.label}: done. Choose it above and press “Use this model”.", icon=":material/check_circle:")
        elif job.status not in ACTIVE and job.error:
            st.error(job.error, icon=":material/cloud_off:")
        refresh_once(job, "download_refreshed")


watch_job(runner, st.session_state.get("download_job"), draw_download)
with st.expander("Recommended models, and which are on this machine"):
    listed = [r for r in rows if r["model_id"] in options] if servers.restricted() else rows
    st.dataframe(pd.DataFrame([{"Model": r["model_id"], "For": r["hardware"], "Size": r["size"],
                                "Here": "yes" if r["present"] else "no", "Speed": r["speed"]} for r in listed]),
                 hide_index=True, width="stretch",
                 column_config={"Model": st.column_config.TextColumn(width="medium"),
                                "Speed": st.column_config.TextColumn(width="large")})
    st.caption("Sizes from each model's hub card (bf16 weights take 2 bytes per parameter). A speed is shown only "
               "where this project's benchmarks measured it."
               + ("" if servers.restricted() else " Hub models need internet once; after that they load from the "
                                                  "Hugging Face cache offline."))

st.subheader("Servers and APIs")
st.caption("Connect the workbench to models that run elsewhere: OpenAI, or any server that speaks the OpenAI chat "
           "completions API (vLLM, Ollama, llama.cpp server, LM Studio, or `python -m workbench serve`).")

st.subheader("API key")
if servers.restricted():  # a visitor of a shared server: whether and where the server keeps a key is not theirs
    st.caption("The servers listed above use the keys their operator set up. An OpenAI key pasted below is used "
               "for this browser session only." if not st.session_state.get("openai_api_key") else
               "Key in use: this browser session.")
else:
    source = ("environment (OPENAI_API_KEY)" if resolve_api_key() and not st.session_state.get("openai_api_key")
              else "this browser session" if st.session_state.get("openai_api_key") else None)
    st.caption(f"Key in use: {source}." if source else "No OpenAI key set: openai: models are not available until "
               "you set one (environment, .streamlit/secrets.toml, or below).")
typed = st.text_input("OpenAI API key (kept only in this browser session, never saved)", type="password",
                      key="openai_api_key_input")
c1, c2 = st.columns(2)
if c1.button("Use this key for this session", icon=":material/key:", disabled=not typed):
    st.session_state["openai_api_key"] = typed.strip()
    st.success("The key is set for this session only; it is not written to the workspace, the logs or any export.",
               icon=":material/check_circle:")
if c2.button("Forget the session key", icon=":material/key_off:", disabled="openai_api_key" not in st.session_state):
    st.session_state.pop("openai_api_key", None)
    st.rerun()

st.subheader("Check a backend")
st.caption("Ids: `openai:gpt-4o-mini` (OpenAI; a fine-tuned model is `openai:ft:...`) or "
           "`compat:http://HOST:PORT/v1#MODEL` for any compatible server. Use the same id as a model on the Compare "
           "and Evaluate pages.")
backend = server_field(st, "Backend id", "generator", empty="(pick a server)",
                       placeholder="compat:http://127.0.0.1:8000/v1#local:smollm2-135m")
if st.button("Check connection", icon=":material/network_check:", type="primary", disabled=not backend.strip()):
    try:
        with st.spinner("Listing models and asking for a 4-token answer..."):
            report = models.check_connection(backend.strip(), st.session_state.get("openai_api_key"))
        st.success(f"Connected: models listed in {report['list_ms']:.0f} ms; a short answer took "
                   f"{report['answer_ms']:.0f} ms (“{report['answer']}”).", icon=":material/check_circle:")
        if not report["model_listed"]:
            st.warning(f"The server does not list {report['model']!r}; it may still accept it.")
        st.markdown("**Models the server lists:** " + ", ".join(f"`{m}`" for m in report["models"][:50]))
    except Exception as exc:
        show_error(exc)
