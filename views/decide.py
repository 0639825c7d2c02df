"""Decide: a short questionnaire plus the measured evidence, a recommendation with its reasons and
counter-arguments, and a memo to download."""

import dataclasses

import pandas as pd
import streamlit as st

from workbench import costs
from workbench.workshop import short_name
from workbench.charts import breakeven_chart, cost_stack_chart, metric_bars_chart, tradeoff_chart
from workbench.decision import CHANGE_RATES, NAMES, Answers, Evidence, describe_rules, recommend
from workbench.decision_store import answers_saved, load_answers, save_answers
from workbench.errors import WorkbenchError
from workbench.eval_runs import decision_runs, judge_version
from workbench.eval_summary import MIN_QUESTIONS, summarize
from workbench.memo import memo_content, memo_html, memo_markdown
from workbench.pricing import pricing_for
from workbench.strategies import LABELS
from workbench.tuning import run_note
from workbench.training import list_adapters
from workbench.verdicts import JUDGE_VERSION
from workbench.ui.common import model_line, show_error, stop_page, workspace

st.title("Decide")
st.caption("Which approach to ship? Answer a few questions about your use; the advisor combines them with what "
           "your evaluation measured. Every reason below points to an answer or a measurement.")
ws = workspace()
saved = load_answers(ws)
if not answers_saved(ws):  # first visit: start from what the workspace holds
    pairs = max((a.pairs or 0 for a in list_adapters(ws)), default=0)
    saved = dataclasses.replace(saved, labelled_examples=pairs)
overrides = costs.load_projection(ws)[1]

# -- questionnaire -----------------------------------------------------------------------------------------
st.subheader("1. Your situation")
with st.form("questionnaire", border=True, enter_to_submit=False):
    c1, c2 = st.columns(2)
    changes = c1.select_slider("How often does the knowledge change?", CHANGE_RATES,
                               value=saved.data_changes, help="From " + " to ".join((CHANGE_RATES[0], CHANGE_RATES[-1]))
                               + ": " + ", ".join(CHANGE_RATES) + ".")
    qpd = c1.number_input("Queries per day", 0, 1_000_000_000, int(saved.queries_per_day), step=100,
                          help="The same figure as on the Costs page: changing it here changes it there.")
    limit = c1.number_input("Latency limit for a full answer (seconds, 0 = none)", 0.0, 600.0,
                            float(saved.latency_limit_s or 0.0), step=0.5)
    examples = c1.number_input("Labelled question-answer examples available", 0, 100_000_000,
                               int(saved.labelled_examples), step=10)
    citations = c2.checkbox("Answers must cite their sources", saved.citations_required)
    strict = c2.checkbox("Answers must follow a fixed format or tone", saved.strict_format)
    team = c2.checkbox("Our team can run and maintain model training", saved.team_can_train)
    submitted = st.form_submit_button("Recommend", type="primary", icon=":material/lightbulb:")
if submitted:
    try:
        saved = Answers(data_changes=changes, citations_required=citations, strict_format=strict,
                        latency_limit_s=limit or None, queries_per_day=int(qpd), labelled_examples=int(examples),
                        team_can_train=team)
        save_answers(ws, saved)
    except WorkbenchError as exc:
        show_error(exc)
answers = saved

# -- evidence -------------------------------------------------------------------------------------------------
st.subheader("2. What you measured")
pricing = pricing_for(ws)
table = pricing.table
runs = decision_runs(ws)
run = runs[0] if runs else None
if len(runs) > 1:
    def _run_label(r):
        when = pd.Timestamp(r.finished_at or r.created_at, unit="s").strftime("%Y-%m-%d %H:%M")
        modes = ", ".join(LABELS.get(m, m) for m in dict.fromkeys(x.mode for x in r.results))
        return f"{when}{' · ' + r.label if r.label else ''} · {r.done} questions · {modes}"

    ids = [r.id for r in runs]
    chosen = st.selectbox("Evaluation run to decide from", ids, key=f"decide_run_{ws}",
                          format_func=lambda i: _run_label(next(r for r in runs if r.id == i)),
                          help="The newest finished run by default. Knowledge-update runs are not offered: a few "
                               "questions about one changed document say who caught up, not which approach to ship.")
    run = next(r for r in runs if r.id == chosen)
if run is None:
    st.info("No finished evaluation yet, so the recommendation below comes from your answers alone. Run one on the "
            "**Evaluate** page (the sample set takes a few minutes) to add measured quality, format, latency and "
            "cost.", icon=":material/info:")
    evidence = Evidence()
else:
    evidence = Evidence.from_run(run, pricing)
    summary = summarize(run, pricing)
    st.caption(f"From {evidence.source}, finished {pd.Timestamp(run.finished_at or run.created_at, unit='s'):%Y-%m-%d %H:%M}; "
               f"local answers priced at {pricing.rate.label()} (set on the Costs page). Correct is the share of "
               "answerable questions whose key facts were all found and none contradicted; the range is a 95% "
               "Wilson interval.")
    model_line(evidence.model_id)
    if judge_version(run) < JUDGE_VERSION:
        st.warning(f"This run's verdicts come from version {judge_version(run)} of the fact judge; the current one is "
                   f"{JUDGE_VERSION}. Re-judge it on the **Evaluate** page (no answer is generated again) so the "
                   "recommendation rests on the current verdicts.", icon=":material/gavel:")

    def _range(s):
        ci = s.get("correct_answerable_ci")
        return f"{ci[0]:.0%}-{ci[1]:.0%}" if ci else "–"

    st.dataframe(pd.DataFrame([{"Approach": LABELS.get(m, m), "Correct": s.get("correct_answerable"),
                                "95% range": _range(s), "Questions": s.get("n_answerable"),
                                "Follows the format": s.get("format_ok"), "Median latency (s)": s.get("latency_p50_s"),
                                "$ per 1k queries": s.get("cost_per_1k_usd")}
                               for m, s in summary.items()]).style.format(
        {"Correct": "{:.0%}", "Follows the format": "{:.0%}", "Median latency (s)": "{:.2f}",
         "$ per 1k queries": "{:.4f}"}, na_rep="–"), hide_index=True, width="stretch")
    rag_note = run_note(ws, run.config)
    if rag_note and rag_note[0]:
        st.caption(rag_note[1])
    elif rag_note:
        st.warning(rag_note[1], icon=":material/tune:")
    if "prompted" in summary:
        st.caption("The **Prompt only** approach below is measured by the **Prompted** run (the base model told the "
                   "answer format and shown examples): its fair best shot without training or retrieval.")
    if not evidence.enough:
        st.caption(f"Fewer than {MIN_QUESTIONS} answerable questions per approach: correctness is shown but does not "
                   "rank the approaches yet.")

# -- recommendation ---------------------------------------------------------------------------------------------
st.subheader("3. Recommendation")
with st.expander("How the advisor decides", icon=":material/rule:"):
    st.markdown("\n".join(f"- {line}" for line in describe_rules()))
if not answers_saved(ws):
    st.info("Answer the questions above and press **Recommend**: the advisor recommends nothing before it knows "
            "your situation.", icon=":material/lightbulb:")
    stop_page()
rec = recommend(answers, evidence)
for warning in rec.warnings:
    st.warning(warning, icon=":material/warning:")
if rec.approach is None:
    st.warning("**No approach meets all of your hard limits.** Relax a limit, or measure on faster hardware or a "
               "remote model. The vetoes are listed below.", icon=":material/block:")
else:
    label = "" if rec.measured else " (from your answers alone)"
    st.success(f"**{NAMES[rec.approach]}**{label}", icon=":material/recommend:")
if rec.vetoed:
    st.markdown("**Ruled out by your hard limits**")
    st.markdown("\n".join(f"- {v.reason}" for v in rec.vetoed))
if rec.approach is not None:
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {r}" for r in rec.reasons) or "- No rule favoured it strongly; it won on a tie.")
    with c2:
        st.markdown("**Against / what to watch**")
        st.markdown("\n".join(f"- {r}" for r in rec.counter) or "- Nothing raised.")
st.caption("Points: " + " · ".join(f"{NAMES[a]} {s:+d}" for a, s in sorted(rec.scores.items(), key=lambda kv: -kv[1]))
           + (f". Evidence: {rec.evidence_size}." if rec.evidence_size else ". No measurements yet."))
with st.expander("Where the points come from", icon=":material/calculate:"):
    st.dataframe(pd.DataFrame([{"Rule applied": reason, **{NAMES[a]: effects.get(a, 0) for a in NAMES}}
                               for _, effects, reason in rec.applied if reason and effects]),
                 hide_index=True, width="stretch", column_config={"Rule applied": st.column_config.TextColumn(width="large")})

# -- memo ------------------------------------------------------------------------------------------------------------
st.subheader("4. Decision memo")
measured = costs.with_overrides(costs.measured_usage(ws, run), overrides)  # the run the advice reads
# The traffic given above is the Costs page's (one figure); the other projection inputs come from there too.
memo_projection = costs.load_projection(ws)[0]
result = costs.project(measured, memo_projection, table)
breakeven = costs.breakeven_sentences(measured, memo_projection, table)
cost_names = costs.approach_names(measured.modes)
totals = {cost_names[a]: costs.total(c) for a, c in result.items()}
st.caption("Monthly cost at your traffic: " + " · ".join(
    f"{n} {'unknown' if v is None else f'${v:,.2f}'}" for n, v in totals.items()) + " (details on the Costs page).")
content = memo_content(ws, answers, rec, run, measured, memo_projection, table, result, breakeven, pricing)
figures = []
if run is not None:
    figures.append(metric_bars_chart(summary, {"correct_answerable": "Correct", "grounded": "Grounded (facts)",
                                               "format_ok": "Format"}, LABELS, title="Quality per approach"))
    figures.append(tradeoff_chart(summary, {m: s.get("correct_answerable") for m, s in summary.items()},
                                  "latency_p50_s", "Median latency (s)", "Correct", LABELS, "Correct vs latency",
                                  evidence_n=min((s.get("n_answerable") or 0) for s in summary.values()),
                                  min_n=MIN_QUESTIONS))
figures.append(cost_stack_chart(result, cost_names))
xs = costs.log_space(1, 1e7, 60)
figures.append(breakeven_chart(xs, costs.curve(measured, memo_projection, table, "queries_per_day", xs),
                               cost_names, "Queries per day (log scale)", "Monthly cost vs traffic",
                               marker_x=memo_projection.queries_per_day))
c1, c2 = st.columns(2)
c1.download_button("Download memo (HTML, with charts)", memo_html(content, figures), file_name=f"{short_name(ws, '')}-decision-memo.html",
                   mime="text/html", type="primary", icon=":material/download:")
c2.download_button("Download memo (Markdown)", memo_markdown(content), file_name=f"{short_name(ws, '')}-decision-memo.md",
                   mime="text/markdown", icon=":material/download:")
with st.expander("Preview the memo", icon=":material/article:"):
    st.markdown(memo_markdown(content).split("\n", 1)[1])  # without the title line
