"""The prompt editor shared by Compare and Evaluate: every approach's system prompt and user template,
saved per workspace, with a reset to the default; and the set-up both pages do before a run."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..errors import WorkbenchError
from ..models import get_embedder
from ..prompts import DEFAULTS, PromptSet, PromptTemplate, example_pool, load_prompts, reset_prompts, save_prompts
from ..records import Adapter
from ..strategies import LABELS, MODE_TABLE, availability
from .common import generator_id, show_error


def prompt_editor(workspace: str, key: str) -> PromptSet:
    """An expander to read and edit the workspace's prompts; returns the prompts in force."""
    prompts = load_prompts(workspace)
    edited = prompts.edited()
    title = "Prompts" + (f" (edited: {', '.join(LABELS.get(m, m) for m in edited)})" if edited else " (defaults)")
    with st.expander(title, icon=":material/edit_note:"):
        st.caption("What each approach is told. `{question}` is the question, `{context}` the numbered passages "
                   "(RAG, hybrid, stuffed), `{adapter_system}` the system prompt the adapter was trained with, "
                   "`{format}` the answer format read from the training pairs. Saved for this workspace; every run "
                   "stores the prompts it used, and the semantic cache never reuses an answer made with another prompt.")
        mode = st.selectbox("Approach", list(DEFAULTS), format_func=lambda m: LABELS.get(m, m), key=f"{key}_mode")
        template = prompts.template(mode)
        system = st.text_area("System prompt", template.system, height=110, key=f"{key}_system_{mode}")
        user = st.text_area("User message template", template.user, height=80, key=f"{key}_user_{mode}")
        examples = prompts.examples
        if mode == "prompted":
            examples = st.number_input("Examples (training pairs nearest to the question)", 0, 8, prompts.examples,
                                       key=f"{key}_examples",
                                       help="The pair of the question under test is never one of them.")
        c1, c2 = st.columns(2)
        if c1.button("Save", icon=":material/save:", key=f"{key}_save"):
            try:
                new = PromptSet({**prompts.templates, mode: PromptTemplate(system, user)}, int(examples))
                save_prompts(workspace, new)
                st.success(f"Saved the {LABELS.get(mode, mode)} prompt for this workspace.",
                           icon=":material/check_circle:")
                prompts = new
            except WorkbenchError as exc:
                show_error(exc)
        if c2.button("Reset to default", icon=":material/restart_alt:", key=f"{key}_reset",
                     disabled=template == DEFAULTS[mode] and examples == prompts.examples):
            prompts = reset_prompts(workspace, mode)
            for field in ("system", "user"):
                st.session_state.pop(f"{key}_{field}_{mode}", None)
            st.rerun()
    return prompts


def approach_setup(workspace: str, key: str, index: Any, adapters: list[Adapter], adapter_name: str | None,
                   modes: list[str], backend_ids: dict[str, str]) -> tuple[PromptSet, Adapter | None, Any, dict]:
    """What Compare and Evaluate both need before a run: the prompt editor's prompts, the chosen adapter,
    the prompted approach's few-shot pool and, per approach, why it cannot run (empty when it can)."""
    prompts = prompt_editor(workspace, key)
    chosen = next((a for a in adapters if a.name == adapter_name), None)
    examples = example_pool(workspace, chosen.path if chosen else None,
                            get_embedder(index.config.embedder_id).embed)
    remote_modes = {m for m, b in backend_ids.items() if b.strip()}
    plan = availability(modes, index=index, adapter=chosen.path if chosen else None, model_id=generator_id(),
                        tuned_elsewhere={m for m in remote_modes if MODE_TABLE[m].adapter}, examples=examples)
    return prompts, chosen, examples, plan
