"""Compare: one question, several approaches, side by side as they stream, each with its sources,
prompt, stage timings, tokens and cost."""

import streamlit as st

from workbench import samples
from workbench.charts import MODE_COLOURS, latency_by_stage_chart
from workbench.config import GenerationConfig, RetrievalConfig
from workbench.index import open_index
from workbench.strategies import DESCRIPTIONS, LABELS, MODES, availability, run_comparison
from workbench.training import adapter_system_prompt, list_adapters
from workbench.ui.common import load_generator, show_error, workspace

st.title("Compare")
st.caption("Ask one question and see each approach answer it side by side, with what it used, how long each stage "
           "took, how many tokens it read and wrote, and what it cost.")
ws = workspace()
index = open_index(ws)
adapters = list_adapters(ws)

with st.form("compare"):
    rows = samples.eval_rows()
    picked = st.selectbox("Pick a question from the sample evaluation set (optional)",
                          ["(type your own below)"] + [r["question"] for r in rows])
    question = st.text_input("Question", value="" if picked.startswith("(") else picked,
                             placeholder="How many days do I have to return a product?", max_chars=2000)
    c1, c2 = st.columns([2, 1])
    modes = c1.multiselect("Approaches", list(MODES), default=["base", "rag", "finetuned", "hybrid"],
                           format_func=lambda m: LABELS[m])
    adapter_name = c2.selectbox("Adapter (fine-tuned and hybrid)", [a["name"] for a in adapters] or ["(none yet)"])
    c3, c4, c5 = st.columns(3)
    top_k = c3.slider("Chunks retrieved (RAG, hybrid)", 1, 10, 5)
    max_tokens = c4.slider("Maximum answer length (tokens)", 16, 256, 96, step=16)
    rate = c5.number_input("Hardware cost ($ per hour)", 0.0, 100.0, 0.0, 0.1,
                           help="What this machine costs per hour; 0 for a laptop you already own. Local answers "
                                "cost their measured seconds at this rate.")
    go = st.form_submit_button("Compare", icon=":material/compare_arrows:", type="primary")

chosen = next((a for a in adapters if a["name"] == adapter_name), None)
plan = availability(modes, index=index, adapter=chosen["path"] if chosen else None)
with st.expander("What each approach does, and what it needs"):
    for mode in MODES:
        reason = plan.get(mode)
        st.markdown(f"**{LABELS[mode]}**: {DESCRIPTIONS[mode]}" + (f"  \n:orange[Not available: {reason}]" if reason else ""))

if go:
    if not question.strip():
        st.warning("Type a question or pick one from the evaluation set.")
    elif not modes:
        st.warning("Choose at least one approach.")
    else:
        try:
            generator = load_generator(st.session_state["generator_id"])
            columns = dict(zip(modes, st.columns(len(modes))))
            boxes, streamed = {}, {m: [] for m in modes}
            for mode, col in columns.items():
                col.markdown(f"#### :material/circle: {LABELS[mode]}".replace(
                    ":material/circle:", f'<span style="color:{MODE_COLOURS[mode]}">●</span>'), unsafe_allow_html=True)
                boxes[mode] = col.empty()
                boxes[mode].caption("waiting...")

            def on_text(mode: str, piece: str) -> None:
                streamed[mode].append(piece)
                boxes[mode].markdown("".join(streamed[mode]) + " ▌")

            def on_answer(answer) -> None:
                col = columns[answer.mode]
                boxes[answer.mode].text(answer.text or "(empty answer)")
                decode = answer.timing("decode") or 0.0
                tok_s = (answer.usage.tokens_out - 1) / decode if decode > 0 and answer.usage.tokens_out > 1 else 0.0
                cost = answer.total_s * rate / 3600
                col.caption(f"{answer.total_s:.2f} s · first token {(answer.timing('ttft') or 0) * 1000:.0f} ms · "
                            f"{tok_s:.0f} tokens/s · {answer.usage.tokens_in} in / {answer.usage.tokens_out} out · "
                            f"${cost:.6f} at ${rate:g}/h")
                if answer.citations:
                    with col.expander(f"Sources ({len(answer.citations)})"):
                        for c in answer.citations:
                            moved = (f" (was #{c['rank_before_rerank']} before reranking)"
                                     if c.get("rerank_score") is not None else "")
                            st.markdown(f"**[{c['rank']}]** `{c['doc_name']}`{moved}  \n{c.get('heading', '')}")
                            if c.get("text"):
                                st.text(c["text"][:700])
                with col.expander("Prompt sent"):
                    st.text(generator.render_prompt(answer.messages))

            result = run_comparison(
                question, modes, generator, index=index, adapter=chosen["path"] if chosen else None,
                adapter_system=adapter_system_prompt(chosen) if chosen else None,
                retrieval_config=RetrievalConfig(top_k=top_k), config=GenerationConfig(max_new_tokens=max_tokens),
                on_text=on_text, on_answer=on_answer)
            for mode, reason in result.unavailable.items():
                boxes[mode].info(f"Not available: {reason}", icon=":material/block:")
            if result.answers:
                st.plotly_chart(latency_by_stage_chart(result.answers, LABELS, "Latency by stage, this question"),
                                width="stretch")
                if result.retrieval is not None:
                    st.caption(f"Retrieval ran once ({result.retrieval.total_s * 1000:.0f} ms) and was shared by "
                               "the approaches that use it; each of their bars includes it.")
        except Exception as exc:
            show_error(exc)
