"""Glossary: the words the pages use, in plain language."""

import streamlit as st

from workbench.glossary import TERMS

st.title("Glossary")
st.caption("The words used across the workbench, in plain language.")
query = st.text_input("Find a word", placeholder="rank, token, grounded ...")
shown = {t: d for t, d in TERMS.items() if not query or query.lower() in (t + " " + d).lower()}
if not shown:
    st.info(f"No entry mentions “{query}”.")
for term, text in shown.items():
    st.markdown(f"**{term}**  \n{text}")
