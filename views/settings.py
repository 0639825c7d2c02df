"""Settings: API backends (OpenAI and any OpenAI-compatible server), checked with one click."""

import streamlit as st

from workbench import models
from workbench.generation.openai_compat import resolve_api_key
from workbench.ui.common import server_field, show_error

st.title("Settings")
st.caption("Connect the workbench to models that run elsewhere: OpenAI, or any server that speaks the OpenAI chat "
           "completions API (vLLM, Ollama, llama.cpp server, LM Studio, or `python -m workbench serve`).")

st.subheader("API key")
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
