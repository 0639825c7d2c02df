"""Costs: a price table, what every answer cost, a monthly projection per approach from measured
usage, and where the approaches break even."""

import pandas as pd
import streamlit as st

from workbench import costs, pricing
from workbench.workshop import short_name
from workbench.charts import breakeven_chart, cost_stack_chart
from workbench.strategies import LABELS
from workbench.errors import WorkbenchError
from workbench.ui.common import show_error, stop_page, workspace

st.title("Costs")
st.caption("What each approach costs per answer and per month, computed from the tokens and seconds measured in "
           "this workspace and a price table you can edit. Unknown prices stay unknown: nothing is counted as $0 "
           "unless its price is $0.")
ws = workspace()
table = pricing.load_prices(ws)
measured_raw = costs.measured_usage(ws)
NAMES = costs.approach_names(measured_raw.modes)  # the words the other pages use
projection, overrides = costs.load_projection(ws)

# -- 1. prices ---------------------------------------------------------------------------------------------
st.subheader("1. Prices")
edited = sum(pricing.row_status(c, r) != "default" for c in pricing.PRICE_COLUMNS for r in table.get(c, []))
source = pricing.price_source()
st.caption("Defaults come from the providers' published prices, each with its date and source"
           + (f" (API models: {source['name']} {source['version']}, prices in effect on {source['date']})"
              if source else "") + "; "
           f"{edited} row(s) edited or added in this workspace. An empty cell means unknown.")
with st.expander("Price table (edit to match your own quotes)", expanded=False, icon=":material/sell:"):
    tabs = st.tabs([title for title, _, _ in pricing.PRICE_COLUMNS.values()])
    frames = {}
    for tab, (category, (title, key, columns)) in zip(tabs, pricing.PRICE_COLUMNS.items()):
        with tab:
            rows = [dict(r, status=pricing.row_status(category, r)) for r in table.get(category, [])]
            texts = pricing.TEXT_COLUMNS.get(category, ())
            frame = pd.DataFrame(rows, columns=[key, *columns, *texts, "as_of", "source", "status"])
            config = {key: st.column_config.TextColumn(key.capitalize(), required=True),
                      "as_of": st.column_config.TextColumn("As of", help="When the price was published (YYYY-MM)"),
                      "source": st.column_config.TextColumn("Source", width="large"),
                      "status": st.column_config.TextColumn("Status", disabled=True,
                                                            help="default, edited or added (saved in this workspace)")}
            for text in texts:
                config[text] = st.column_config.TextColumn({"speedup_source": "Speed-up source"}.get(text, text), width="medium")
            for column, (header, _, upper) in columns.items():
                config[column] = st.column_config.NumberColumn(header, min_value=0.0, max_value=upper, format="%.4g")
            frames[category] = st.data_editor(frame, column_config=config, num_rows="dynamic", hide_index=True,
                                              width="stretch", key=f"prices_{category}")
    c1, c2 = st.columns(2)
    if c1.button("Save prices", type="primary", icon=":material/save:"):
        try:
            new = {c: [{k: (None if pd.isna(v) else v) for k, v in row.items() if k != "status"}
                       for row in f.to_dict("records")] for c, f in frames.items()}
            table = pricing.save_prices(ws, new)
            st.success("Prices saved in this workspace.", icon=":material/check:")
        except WorkbenchError as exc:
            show_error(exc)
    if c2.button("Reset to the defaults", icon=":material/restart_alt:"):
        pricing.reset_prices(ws)
        for c in pricing.PRICE_COLUMNS:
            st.session_state.pop(f"prices_{c}", None)
        st.rerun()
if not any(table.get(c) for c in pricing.PRICE_COLUMNS):
    st.warning("The price table is empty: every cost below is unknown. Reset to the defaults or add prices.",
               icon=":material/money_off:")

# -- 2. measured usage --------------------------------------------------------------------------------------
st.subheader("2. Measured usage per answer")
if not measured_raw.modes:
    st.info("Nothing measured yet: ask a question on the **Compare** page or run an evaluation on the **Evaluate** "
            "page, and the tokens and seconds of each approach appear here. You can also type them below.",
            icon=":material/info:")
st.caption(f"From {measured_raw.source}. Seconds are this machine's, with generation shared across answers decoded "
           "together. Edit a cell to try other figures; edited values are saved in this workspace. The four "
           "approaches are the ones Decide weighs: prompt only is priced from the Prompted answers when they were "
           "measured (their prompt carries the format and examples), else from the bare base model's.")
usage_frame = pd.DataFrame([
    {"approach": NAMES[a], "mode": m,
     "tokens_in": (measured_raw.modes.get(m) or costs.ModeUsage(0, 0, 0)).tokens_in,
     "tokens_out": (measured_raw.modes.get(m) or costs.ModeUsage(0, 0, 0)).tokens_out,
     "machine_s": (measured_raw.modes.get(m) or costs.ModeUsage(0, 0, 0)).machine_s,
     "answers": (measured_raw.modes.get(m) or costs.ModeUsage(0, 0, 0)).answers}
    for a, m in ((a, costs.mode_of(a, measured_raw.modes)) for a in costs.APPROACH_MODES)])
for i, row in usage_frame.iterrows():
    for k, v in (overrides.get(row["mode"]) or {}).items():
        usage_frame.at[i, k] = v
usage_edit = st.data_editor(
    usage_frame, hide_index=True, width="stretch", key="usage_editor", disabled=["approach", "mode", "answers"],
    column_order=["approach", "tokens_in", "tokens_out", "machine_s", "answers"],
    column_config={"approach": "Approach",
                   "tokens_in": st.column_config.NumberColumn("Prompt tokens", min_value=0.0, format="%.0f"),
                   "tokens_out": st.column_config.NumberColumn("Answer tokens", min_value=0.0, format="%.0f"),
                   "machine_s": st.column_config.NumberColumn("Machine seconds", min_value=0.0, format="%.3f",
                                                              help="seconds of the measuring machine per answer"),
                   "answers": st.column_config.NumberColumn("Measured answers", help="0: not measured")})
new_overrides = {}
for _, row in usage_edit.iterrows():
    m = measured_raw.modes.get(row["mode"])
    changed = {k: float(row[k]) for k in ("tokens_in", "tokens_out", "machine_s")
               if not pd.isna(row[k]) and (m is None or abs(float(row[k]) - getattr(m, k)) > 1e-9)}
    if m is None and not any(changed.values()):
        continue
    if changed:
        new_overrides[row["mode"]] = changed
train_note = (f"Training: adapter `{measured_raw.adapter}` took {measured_raw.training_s:.0f} s here"
              + (f", ≈{measured_raw.training_tokens:,.0f} training tokens" if measured_raw.training_tokens else "")
              if measured_raw.training_s else "Training: no adapter trained yet (training costs will be unknown).")
st.caption(f"{train_note} · Documents: {measured_raw.documents}, ≈{measured_raw.doc_tokens:,.0f} tokens each "
           f"(characters ÷ 4) · Question: ≈{measured_raw.query_tokens:.0f} tokens.")
if new_overrides and st.button("Forget my edits, use the measured figures", icon=":material/undo:"):
    new_overrides = {}
    st.session_state.pop("usage_editor", None)

# -- 3. projection -------------------------------------------------------------------------------------------
st.subheader("3. Monthly projection")
api_models = [r["model"] for r in table.get("api", [])]
hardware = [r["name"] for r in table.get("hardware", [])] or [projection.hardware]
embedders = [r["model"] for r in table.get("embedding", [])] or [projection.embedding_model]
c1, c2, c3 = st.columns(3)
qpd = c1.number_input("Queries per day", 0, 1_000_000_000, int(projection.queries_per_day), step=100,
                      help="Expected traffic; charts below show the whole range.")
changes = c2.number_input("Documents changed per month", 0.0, 1_000_000.0, float(projection.docs_changed_per_month),
                          step=1.0, help="Each change is re-embedded (RAG) and, for fine-tuning, calls for retraining.")
derived = c3.toggle("Retrain on each change", projection.retrains_per_month is None,
                    help="One retraining per change so the model is never stale, batched at most daily (30 a month).")
retrains = None if derived else c3.number_input("Retrainings per month", 0.0, 744.0,
                                                 float(projection.retrains_per_month or 1.0), step=0.5)
gen_options = ["local", *api_models]
generator = c1.selectbox("Where answers are generated", gen_options,
                         index=gen_options.index(projection.generator) if projection.generator in gen_options else 0,
                         format_func=lambda g: "Local model (as measured)" if g == "local" else g,
                         help="An API model uses the measured tokens at that model's prices (fine-tuned prices "
                              "for fine-tuned and hybrid).")
hw = c2.selectbox("Hardware for local models", hardware,
                  index=hardware.index(projection.hardware) if projection.hardware in hardware else 0,
                  disabled=generator != "local")
chosen_rate = pricing.hardware_rate(table, hw)
c3.caption("Speed-up over the measuring machine: "
           + (f"{chosen_rate.speedup:g}x" if chosen_rate.speedup is not None else "**not stated**, so local costs on "
              "it are unknown")
           + (f" ({chosen_rate.speedup_source})." if chosen_rate.speedup_source else ".")
           + " Edit it in the price table's Hardware tab.")
always_on = c1.toggle("Rent whole machines (always on)", projection.always_on, disabled=generator != "local",
                      help="Off: pay for the seconds used. On: whole machines for 730 h a month each.")
emb = c2.selectbox("Embedding model", embedders,
                   index=embedders.index(projection.embedding_model) if projection.embedding_model in embedders else 0)
reranker = c3.toggle("Host a reranker", projection.reranker,
                     help="A cross-encoder on its own server. Off: what the workbench runs (no reranker, or the "
                          "built-in sentence rescoring inside the app), which costs no extra server.")
vector_server = c2.toggle("Host the index on a Chroma server", projection.vector_server,
                          help="Off: the embedded index inside the app, as measured here (no server). On: a hosted "
                               "Chroma server at the price table's 'vector database' row.")
amortise = c1.number_input("Months to spread the first training over", 1.0, 120.0, float(projection.amortise_months),
                           step=1.0)
try:
    projection = costs.Projection(queries_per_day=float(qpd), docs_changed_per_month=float(changes),
                                  retrains_per_month=retrains, generator=generator, hardware=hw,
                                  always_on=always_on, embedding_model=emb, reranker=reranker,
                                  vector_server=vector_server,
                                  amortise_months=float(amortise))
    measured = costs.with_overrides(measured_raw, new_overrides)
    costs.save_projection(ws, projection, new_overrides)
except WorkbenchError as exc:
    show_error(exc)
    stop_page()

result = costs.project(measured, projection, table)
rows = costs.projection_rows(result)
usd = lambda v: "unknown" if v is None or pd.isna(v) else f"${v:,.2f}"  # noqa: E731 - the grid shows a null as "None"
frame = pd.DataFrame([{"Component": r["component"], **{NAMES[a]: usd(r[a]) for a in result}} for r in rows])
st.dataframe(frame, hide_index=True, width="stretch",
             column_config={NAMES[a]: st.column_config.TextColumn(NAMES[a], alignment="right") for a in result})
unknown = {NAMES[a]: [c.name.lower() for c in comps if c.usd is None] for a, comps in result.items()}
for name, parts in unknown.items():
    if parts:
        reasons = "; ".join(dict.fromkeys(c.how for a, comps in result.items() if NAMES[a] == name for c in comps
                                          if c.usd is None))  # one reason often leaves several parts unknown
        st.caption(f":orange[{name}: {', '.join(parts)} unknown ({reasons}).]")
st.plotly_chart(cost_stack_chart(result, NAMES), width="stretch")
with st.expander("How each figure was computed", icon=":material/calculate:"):
    for a, comps in result.items():
        st.markdown(f"**{NAMES[a]}**")
        st.markdown("\n".join(f"- {c.name}: {c.how}" + ("" if c.usd is None else f" → **${c.usd:,.4f}**")
                              for c in comps if c.how != "not used") or "- nothing")

# -- 4. break-even --------------------------------------------------------------------------------------------
st.subheader("4. Break-even")
c1, c2 = st.columns(2)
pair_a = c1.selectbox("Compare", list(NAMES), index=2, format_func=NAMES.get, key="be_a")
others = [a for a in NAMES if a != pair_a]
pair_b = c2.selectbox("with", others, index=others.index("rag") if "rag" in others else 0, format_func=NAMES.get,
                      key="be_b")
sentences = costs.breakeven_sentences(measured, projection, table, pair_a, pair_b)
for s in sentences:
    st.markdown(f"- {s}")
xs = costs.log_space(1, 1e7, 60)
curves = costs.curve(measured, projection, table, "queries_per_day", xs)
points = costs.crossings(xs, curves[pair_a], curves[pair_b])
col1, col2 = st.columns(2)
col1.plotly_chart(breakeven_chart(xs, curves, NAMES, "Queries per day (log scale)",
                                  f"Monthly cost vs traffic ({projection.docs_changed_per_month:g} changes a month)",
                                  marker_x=projection.queries_per_day,
                                  crossings=[(x, f"{NAMES[pair_a]} = {NAMES[pair_b]}") for x, _ in points]),
                  width="stretch")
rates = costs.log_space(0.1, 1000, 50)
rate_curves = costs.curve(measured, projection, table, "docs_changed_per_month", rates)
rate_points = costs.crossings(rates, rate_curves[pair_a], rate_curves[pair_b])
col2.plotly_chart(breakeven_chart(rates, rate_curves, NAMES, "Documents changed per month (log scale)",
                                  f"Monthly cost vs change rate ({projection.queries_per_day:,.0f} queries/day)",
                                  marker_x=projection.docs_changed_per_month, log_y=False,
                                  crossings=[(x, f"{NAMES[pair_a]} = {NAMES[pair_b]}") for x, _ in rate_points]),
                  width="stretch")

# -- 5. every answer ---------------------------------------------------------------------------------------------
st.subheader("5. What every answer cost")
whatif = st.selectbox("…and what it would cost on", ["(none)", *api_models], index=1 if api_models else 0,
                      help="Tokens are counted with that model's own tokenizer where one is available offline "
                           "(gpt-3.5-turbo, gpt-4); otherwise the local model's counts are used, labelled as an "
                           "estimate.")
answer_rows = costs.usage_rows(ws, pricing.pricing_for(ws), None if whatif == "(none)" else whatif)
if not answer_rows:
    st.info("No answers yet: ask on the **Compare** page or run an evaluation.", icon=":material/info:")
else:
    df = pd.DataFrame(answer_rows)
    df["at"] = pd.to_datetime(df["at"], unit="s").dt.strftime("%Y-%m-%d %H:%M")
    df["mode"] = df["mode"].map(lambda m: LABELS.get(m, m))  # the names Compare and Evaluate use
    known = df["cost_usd"].dropna()
    c1, c2, c3 = st.columns(3)
    c1.metric("Answers", len(df))
    c2.metric(f"Measured cost at {hw}", f"${known.sum():,.4f}" if len(known) == len(df) else
              "unknown" if known.empty else f"${known.sum():,.4f} + ?",
              help=None if len(known) == len(df) else f"{len(df) - len(known)} of the {len(df)} answers cannot be priced "
              f"on {hw}: it needs an hourly price and a speed-up over the measuring machine (the price table's "
              "Hardware tab); the orange lines above say which is missing.")
    if "whatif_usd" in df:
        w = df["whatif_usd"].dropna()
        c3.metric(f"On {whatif}", f"${w.sum():,.4f}" if len(w) == len(df) else "unknown",
                  help=df["whatif_basis"].iloc[0])
    st.dataframe(df, hide_index=True, width="stretch", column_config={
        "where": "From", "question": "Question", "at": "When", "mode": "Approach", "model": "Model",
        "tokens_in": "Prompt tokens", "tokens_out": "Answer tokens",
        "machine_s": st.column_config.NumberColumn("Machine s", format="%.3f"),
        "cost_usd": st.column_config.NumberColumn("Cost ($)", format="%.6f"), "basis": "How",
        "whatif_usd": st.column_config.NumberColumn(f"On {whatif} ($)", format="%.6f"), "whatif_basis": "How (what-if)"})
    st.download_button("Download as CSV", df.to_csv(index=False), file_name=f"{short_name(ws, '')}-answer-costs.csv",
                       mime="text/csv", icon=":material/download:")
st.caption("Next: the **Decide** page turns these figures and your evaluation into a recommendation and a memo.")
