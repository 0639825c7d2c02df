"""Compare: one question, several approaches, side by side as they stream, each with its sources,
prompt, stage timings, tokens and cost; blind voting; a semantic cache; charts and history that
read from the runs stored in the workspace."""

import random
import time

import streamlit as st

from workbench import samples
from workbench.workshop import short_name
from workbench.charts import (MODE_COLOURS, cumulative_cost_chart, latency_by_stage_chart,
                              latency_distribution_chart, tokens_chart)
from workbench.config import GenerationConfig, RetrievalConfig
from workbench.history import (ALL_BAD, BLIND_LETTERS, DEFAULT_CACHE_THRESHOLD, answer_rows, clear_history,
                               export_csv, export_json, get_run, list_runs, record_vote, run_and_record,
                               vote_agreement, vote_tally)
from workbench.index import open_index
from workbench.pricing import pricing_for
from workbench.strategies import DESCRIPTIONS, LABELS, MODES, retrieves, ComparisonSpec
from workbench.training import list_adapters
from workbench.raft import adapter_label
from workbench.records import Answer, Run
from workbench.scoring import judge_names
from workbench.eval_summary import MIN_VOTES, wilson
from workbench.evidence import answer_evidence, current_item, find_item, known_items, test_questions
from workbench.facts import answer_text
from workbench.ui.common import (answer_markdown, generator_id, load_generator, md_escape, model_line, rate_line,
                                 server_field, show_error, workspace)
from workbench.ui.passages import passages_slider
from workbench.ui.prompts import approach_setup

st.title("Compare")
st.caption("Ask one question and see each approach answer it side by side, with what it used, how long each stage "
           "took, how many tokens it read and wrote, and what it cost. Every question is kept in this workspace's "
           "history; the charts below grow with each one.")
ws = workspace()
index = open_index(ws)
adapters = list_adapters(ws)
adapter_names = {a.name: adapter_label(a, generator_id()) for a in adapters} | {"(none yet)": "(none yet)"}
st.session_state.setdefault("session_runs", [])
pricing = pricing_for(ws)


def dot(mode: str) -> str:
    return f'<span style="color:{MODE_COLOURS.get(mode, "#555")}">●</span>'


def use_picked() -> None:
    """A question picked from a test set goes into the Question box at once (not on Compare)."""
    picked = st.session_state.get("compare_pick", "")
    if picked and not picked.startswith("("):
        st.session_state["compare_question"] = picked


on_sample = samples.looks_like_sample(d["name"] for d in index.documents())
offered = test_questions(ws, sample=on_sample)
# Outside the form: a widget inside one changes nothing on screen until the form is submitted.
if offered:
    st.selectbox("Pick a question from a test set (optional)", ["(type your own below)"] + offered, key="compare_pick",
                 on_change=use_picked, help="The questions of this workspace's evaluation runs" +
                 (", then the sample evaluation set's." if on_sample else "."))
# A question whose answers were still streaming when the person left the page stopped there (the server stops
# work nobody waits for): say so, and put it back in the box.
if (stopped := st.session_state.pop("compare_inflight", None)) is not None:
    st.session_state["compare_question"] = stopped
    st.info(f"Your question “{md_escape(stopped, 200)}” stopped when you left the page before its answers finished; "
            "nothing was stored. It is back in the box: press Compare to ask it again.", icon=":material/replay:")
with st.form("compare"):
    question = st.text_input("Question", key="compare_question",
                             placeholder="How many days do I have to return a product?" if on_sample else
                             "A question your documents answer", max_chars=2000)
    c1, c2 = st.columns([3, 2])  # room for an adapter's name and marks
    modes = c1.multiselect("Approaches", list(MODES), default=["base", "prompted", "rag", "finetuned", "hybrid"],
                           format_func=lambda m: LABELS[m])
    adapter_name = c2.selectbox("Adapter (fine-tuned and hybrid)", [a.name for a in adapters] or ["(none yet)"],
                                format_func=adapter_names.get)
    c3, c4 = st.columns(2)
    top_k = passages_slider(c3, ws, index, generator_id())
    max_tokens = c4.slider("Maximum answer length (tokens)", 16, 256, 96, step=16)
    c5, c6, c7 = st.columns(3)
    blind = c5.toggle("Blind test", help="Answers are shown as A, B, C ... in random order; vote for the best, "
                                         "then see which approach wrote it.")
    hide_format = c5.toggle("Hide the format while voting", value=True,
                            help="During a blind vote, show only each answer's statement (no 'Summary:' or "
                                 "'Sources:' lines), so the trained format does not give the adapters away.")
    use_cache = c6.toggle("Semantic cache", help="A question close enough to an earlier one (asked with the same "
                                                 "settings) returns the earlier answer instantly, marked as a cache hit.")
    threshold = c7.slider("Cache threshold (cosine similarity)", 0.80, 1.00, DEFAULT_CACHE_THRESHOLD, 0.01,
                          help="How similar a question must be to an earlier one to reuse its answer.")
    with st.expander("Models per approach (optional): compare against an API or a server"):
        st.caption("Empty: the local model. `openai:gpt-4o-mini` (key on the Settings page) or "
                   "`compat:http://HOST:PORT/v1#MODEL` for any OpenAI-compatible server. For the fine-tuned and "
                   "hybrid approaches, a remote model is either itself fine-tuned (`openai:ft:...`) or serves your "
                   "adapter under a name (vLLM `--lora-modules`).")
        bcols = st.columns(2)
        backend_ids = {m: server_field(bcols[i % 2], f"Model for {LABELS[m]}", "generator", key=f"backend_{m}")
                       for i, m in enumerate(MODES)}
        remote_adapter = st.text_input("Adapter name on that server (fine-tuned, hybrid; empty: the model itself)",
                                       key="backend_remote_adapter")
    go = st.form_submit_button("Compare", icon=":material/compare_arrows:", type="primary")

prompts, chosen, examples, plan = approach_setup(ws, "compare_prompts", index, adapters, adapter_name, modes, backend_ids)
remote_modes = {m for m, b in backend_ids.items() if b.strip()}
with st.expander("What each approach does, and what it needs"):
    for mode in MODES:
        reason = plan.get(mode)
        st.markdown(f"{dot(mode)} **{LABELS[mode]}**: {DESCRIPTIONS[mode]}"
                    + (f"  \n:orange[Not available: {reason}]" if reason else ""), unsafe_allow_html=True)


def live_run() -> None:
    """Stream the answers into columns, store the run, then show it from the store."""
    generator = load_generator(generator_id())
    runnable = [m for m in modes if not plan.get(m)]
    shown = runnable[:]
    if blind:
        random.SystemRandom().shuffle(shown)
    columns = dict(zip(shown, st.columns(max(1, len(shown))))) if shown else {}
    boxes, streamed = {}, {m: [] for m in modes}
    for i, (mode, col) in enumerate(columns.items()):
        title = f"#### Answer {BLIND_LETTERS[i]}" if blind else f"#### {dot(mode)} {LABELS[mode]}"
        col.markdown(title, unsafe_allow_html=True)
        boxes[mode] = col.empty()
        boxes[mode].caption("waiting for the model...")

    def on_text(mode: str, piece: str) -> None:
        streamed[mode].append(piece)
        boxes[mode].markdown(answer_markdown("".join(streamed[mode])) + " ▌")

    def on_cached(mode: str, answer: Answer) -> None:
        boxes[mode].markdown(answer_markdown(answer.text))

    spec = ComparisonSpec.build(
        modes, generator, backend_ids={m: backend_ids[m] for m in remote_modes},
        remote_adapter=remote_adapter.strip(), session_key=st.session_state.get("openai_api_key"), adapter=chosen,
        retrieval=RetrievalConfig(top_k=top_k), generation=GenerationConfig(max_new_tokens=max_tokens),
        prompts=prompts, examples=examples, cache_threshold=threshold if use_cache else None, blind=blind,
        embedder_id=index.config.embedder_id)
    run = run_and_record(question, spec, workspace=ws, index=index, blind_order=shown if blind else None,
                         on_text=on_text, on_cached=on_cached)
    st.session_state.pop("compare_inflight", None)
    st.session_state["last_run"] = run.id
    st.session_state["session_runs"].append(run.id)
    if blind and hide_format:
        st.session_state.setdefault("blind_plain", set()).add(run.id)
    st.rerun()


def answer_details(col, answer: Answer) -> None:
    total, usage = answer.total_s, answer.usage
    cost = pricing.cost(answer)
    cost_text = "cost unknown" if cost.usd is None else f"${cost.usd:.6f}"
    hit = answer.cache_hit
    if hit:
        col.success(f"Cache hit: reused the answer to “{hit['question']}” (similarity {hit['similarity']:.3f} ≥ "
                    f"{hit['threshold']:.2f}); looked up in {total * 1000:.0f} ms, no model call.",
                    icon=":material/bolt:")
        return
    col.caption(f"{total:.2f} s · first token {(answer.timing('ttft') or 0) * 1000:.0f} ms · "
                f"{answer.tokens_per_s or 0.0:.0f} tokens/s · "
                f"{usage.tokens_in} in / {usage.tokens_out} out · {cost_text} ({cost.basis})"
                + (" · stopped at the length limit" if answer.finish_reason == "length" else ""))
    if answer.citations:
        with col.expander(f"Sources ({len(answer.citations)})"):
            for c in answer.citations:
                moved = (f" (#{c['rank_before_rerank']} before reranking)"
                         if c.get("rerank_score") is not None and c.get("rank_before_rerank") else "")
                score = f" · score {c['score']:.3f}" if c.get("score") is not None else ""
                st.markdown(f"**[{c['rank']}]** `{c['doc_name']}`{moved}{score}  \n{c.get('heading') or ''}")
                if c.get("text"):
                    st.markdown(answer_markdown(c["text"][:700]))
    with col.expander("Prompt sent"):
        st.text("\n\n".join(f"[{m['role']}]\n{m['content']}" for m in answer.messages))


VERDICT_BADGES = {"correct": "green", "partial": "orange", "wrong": "red", "stale": "violet", "refused": "gray",
                  "unscored": "gray"}


def show_evidence(col, answer: Answer, item, names, indexed: set[str], old_reference: str | None) -> None:
    """The verdict against the expected answer, retrieval's part in it, and invented sources."""
    ev = answer_evidence(answer, item, indexed, background=names.background, known=names.known,
                         old_reference=old_reference)
    if ev.verdict is not None:
        colour = VERDICT_BADGES.get(ev.verdict.verdict, "gray")
        col.markdown(f":{colour}-badge[{ev.verdict.verdict.capitalize()}] {ev.verdict.reason}")
    if ev.attribution:
        col.caption(ev.attribution)
    for name, why in ev.invented:
        col.warning(f"Invented source: `{name}` ({why}).", icon=":material/report:")


def show_run(run: Run) -> None:
    blind_info = run.blind
    by_mode = {a.mode: a for a in run.answers}
    st.markdown(f"**Question:** {run.question}")
    items = known_items(ws)
    item = find_item(run.question, items)
    old_reference = None
    if item is not None:
        item, old_reference = current_item(item, index)
        expected = item.reference if item.answerable else f"decline: the documents do not answer this ({item.reference})"
        st.markdown(f"**Expected answer** (test item {item.id}"
                    + (f", from `{item.source}`" if item.source else "")
                    + (", as updated" if old_reference else "") + f"): {expected}")
        if old_reference:
            st.caption(f"The indexed `{item.source}` holds the updated answer; before the update it was: "
                       f"{old_reference} An answer that still says so is judged stale.")
    if run.answers:
        model_line(run.answers[0].model_id or generator_id())
    if blind_info and not blind_info.get("vote"):
        order = blind_info["order"]
        plain = run.id in st.session_state.get("blind_plain", set())
        cols = st.columns(len(order))
        for i, (mode, col) in enumerate(zip(order, cols)):
            col.markdown(f"#### Answer {BLIND_LETTERS[i]}")
            text = by_mode[mode].text
            col.markdown(answer_markdown(answer_text(text).strip() if plain else text) or "(empty answer)")
        with st.form(f"vote-{run.id}"):
            choices = [BLIND_LETTERS[i] for i in range(len(order))] + [ALL_BAD]
            vote = st.radio("Which answer is best?", choices, horizontal=True, index=None,  # no vote until chosen
                            format_func=lambda c: "All bad" if c == ALL_BAD else f"Answer {c}")
            if st.form_submit_button("Vote and reveal", icon=":material/how_to_vote:", type="primary"):
                if vote is None:
                    st.warning("Choose the best answer, or All bad, first.", icon=":material/how_to_vote:")
                else:
                    record_vote(ws, run.id, vote)
                    st.rerun()
        st.caption("Approach names, verdicts, sources, prompts and timings are hidden until you vote"
                   + (", and only each answer's statement is shown (the format is hidden)." if plain else "."))
        return
    names = judge_names(items)
    indexed = {d["name"] for d in index.documents()}
    order = blind_info["order"] if blind_info else [a.mode for a in run.answers]
    cols = st.columns(max(1, len(order) + len(run.unavailable) + len(run.errors)))
    for i, mode in enumerate(order):
        answer = by_mode[mode]
        letter = f"Answer {BLIND_LETTERS[i]}: " if blind_info else ""
        star = " ★ your pick" if blind_info and blind_info.get("winner") == mode else ""
        cols[i].markdown(f"#### {dot(mode)} {letter}{LABELS.get(mode, mode)}{star}", unsafe_allow_html=True)
        cols[i].markdown(answer_markdown(answer.text) or "(empty answer)")
        show_evidence(cols[i], answer, item, names, indexed, old_reference)
        answer_details(cols[i], answer)
    extra = list(run.errors.items())
    for j, (mode, message) in enumerate(extra, start=len(order)):
        cols[j].markdown(f"#### {dot(mode)} {LABELS.get(mode, mode)}", unsafe_allow_html=True)
        cols[j].error(message, icon=":material/cloud_off:")
    for j, (mode, reason) in enumerate(run.unavailable.items(), start=len(order) + len(extra)):
        cols[j].markdown(f"#### {dot(mode)} {LABELS.get(mode, mode)}", unsafe_allow_html=True)
        cols[j].info(f"Not available: {reason}", icon=":material/block:")
    batch = max((a.batch_size for a in run.answers if not a.cache_hit), default=1)
    if batch > 1:
        st.caption(f"The {batch} generated answers were decoded together in one batch (one pass over the model's "
                   "weights per token for all of them); each first token also waited for the other prompts.")
    if blind_info and blind_info.get("winner") == ALL_BAD:
        st.caption("You voted: all answers bad.")
    if run.answers:
        st.plotly_chart(latency_by_stage_chart(run.answers, LABELS, "Latency by stage, this question"),
                        width="stretch")
        if any(retrieves(a.mode) and not a.cache_hit for a in run.answers):
            st.caption("Retrieval ran once and was shared by the approaches that use it; each of their bars "
                       "includes it.")


if go:
    if not question.strip():
        st.warning("Type a question or pick one from the evaluation set.")
    elif not modes:
        st.warning("Choose at least one approach.")
    else:
        st.session_state["compare_inflight"] = question
        try:
            live_run()
        except Exception as exc:
            st.session_state.pop("compare_inflight", None)
            show_error(exc)

last = st.session_state.get("last_run")
if last and last not in {r.id for r in list_runs(ws)}:  # another workspace's run, or history cleared
    last = None
if last:
    try:
        show_run(get_run(ws, last))
    except Exception as exc:
        show_error(exc)

# -- charts over the stored runs ----------------------------------------------------------------------
st.divider()
st.subheader("Charts")
runs = list_runs(ws)
if not runs:
    st.info("No questions yet: ask one above. Answers, charts and history appear here and are kept in this "
            "workspace.", icon=":material/insights:")
else:
    ids = set(st.session_state["session_runs"])
    # A blind question not yet voted on stays out of the charts, the history's columns and the downloads:
    # its tokens, timings and fastest approach would tell which answer is which.
    pending = {r.id for r in runs if r.blind and not r.blind.get("vote")}
    c1, c2 = st.columns([2, 1])
    scope = c1.radio("Runs shown", ["This session", "Whole history"], horizontal=True,
                     index=0 if ids & {r.id for r in runs} else 1)
    rate_line(c2, pricing)
    shown = [r for r in runs if r.id in ids] if scope == "This session" else runs
    if pending & {r.id for r in shown}:
        st.caption(f"{len(pending & {r.id for r in shown})} blind question(s) wait for your vote: their answers stay "
                   "out of the charts and the downloads, and the history hides which was fastest, until you vote.")
    rows = answer_rows([r for r in shown if r.id not in pending], pricing)
    answered_by = list(dict.fromkeys(r["model_id"] for r in rows if r["model_id"]))
    if len(answered_by) > 1:  # two models' latencies and costs in one chart would compare nothing
        current = generator_id()
        model = c1.selectbox("Model", answered_by, index=answered_by.index(current) if current in answered_by else 0,
                             help="The charts show the answers of one model at a time; this selection was answered "
                                  f"by {len(answered_by)}.")
        rows = [r for r in rows if r["model_id"] == model]
    if not rows:
        st.caption("No answers in this selection yet.")
    else:
        a, b = st.columns(2)
        a.plotly_chart(latency_distribution_chart(rows, LABELS), width="stretch")
        b.plotly_chart(cumulative_cost_chart(rows, LABELS, f"local on {pricing.rate.label()}"), width="stretch")
        st.plotly_chart(tokens_chart(rows, LABELS), width="stretch")
        if pricing.rate.per_hour == 0:
            st.caption("Local answers cost $0 on a machine you already own: choose the hardware you would "
                       "deploy on (Costs page) to see their cost.")
    chosen_model = model if len(answered_by) > 1 else None  # the votes follow the charts' Model choice
    voted_on = [r for r in runs if chosen_model is None or any(a.model_id == chosen_model for a in r.answers)]
    tally = vote_tally(voted_on)
    if tally["votes"]:
        st.markdown(f"**Blind votes** ({tally['votes']}, of which {tally['all_bad']} 'all bad'"
                    + (f"; answers of {chosen_model})" if chosen_model else ")"))

        def win_rate(wins: int, n: int) -> str:
            if n < MIN_VOTES:
                return f"not enough votes yet ({n} of {MIN_VOTES})"
            lo, hi = wilson(wins, n)
            return f"{wins / n:.0%} of {n} (95% range {lo:.0%}-{hi:.0%})"

        st.dataframe([{"Approach": LABELS.get(m, m), "Wins": tally["wins"].get(m, 0), "Took part": n,
                       "Win rate": win_rate(tally["wins"].get(m, 0), n)}
                      for m, n in sorted(tally["entered"].items(), key=lambda kv: -tally["wins"].get(kv[0], 0))],
                     hide_index=True, width="stretch")
        fewest = min(tally["entered"].values(), default=0)
        if fewest < MIN_VOTES:
            st.caption(f"Win rates appear from {MIN_VOTES} votes per approach on ({fewest} so far for the least "
                       "voted): fewer say too little to rank anything.")
        agreement = vote_agreement(voted_on, known_items(ws))
        if agreement:
            st.caption(f"On the {agreement['n']} voted question(s) from a test set, the vote agrees with the "
                       f"fact-level verdicts {agreement['agree']} time(s): it picked an answer judged correct, or "
                       "'all bad' when none was.")
            if agreement["disagreements"]:
                with st.expander(f"Where votes and verdicts disagree ({len(agreement['disagreements'])})"):
                    st.dataframe(agreement["disagreements"], hide_index=True)

    # -- history --------------------------------------------------------------------------------------
    st.subheader(f"History ({len(runs)} question{'s' if len(runs) != 1 else ''})")
    table = []
    for n, run in enumerate(runs, start=1):
        answers = run.answers
        fastest = min(answers, key=lambda a: a.total_s, default=None)
        winner = (run.blind or {}).get("winner")
        hidden = run.id in pending
        table.append({"#": n, "When": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at)),
                      "Question": run.question, "Approaches": ", ".join(LABELS.get(a.mode, a.mode) for a in answers),
                      "Model": ", ".join(dict.fromkeys(a.model_id for a in answers if a.model_id)),
                      "Fastest": "after your vote" if hidden else
                      LABELS.get(fastest.mode, fastest.mode) if fastest else "",
                      "Cache hits": sum(1 for a in answers if a.cache_hit),
                      "Blind vote": "" if not winner else ("all bad" if winner == ALL_BAD else LABELS.get(winner, winner))})
    st.dataframe(table[::-1], hide_index=True, height=min(400, 40 + 35 * len(table)), width="stretch",
                 column_config={"#": st.column_config.NumberColumn(width="small"),
                                "Question": st.column_config.TextColumn(width="medium"),
                                "Cache hits": st.column_config.NumberColumn(width="small"),
                                "Blind vote": st.column_config.TextColumn(width="small")})
    voted = [r for r in runs if r.id not in pending]
    all_rows = answer_rows(voted, pricing)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download answers (CSV)", export_csv(all_rows), f"compare-history-{short_name(ws, '')}.csv", "text/csv",
                       icon=":material/download:")
    d2.download_button("Download runs (JSON)", export_json(voted), f"compare-history-{short_name(ws, '')}.json", "application/json",
                       icon=":material/download:")
    with d3.popover("Clear history", icon=":material/delete:"):
        st.write(f"Delete all {len(runs)} stored questions and answers of workspace `{short_name(ws)}`? Indexes and adapters "
                 "are kept.")
        if st.button("Yes, clear the history", type="primary"):
            clear_history(ws)
            st.session_state["session_runs"] = []
            st.session_state.pop("last_run", None)
            st.rerun()
