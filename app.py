"""RAG-vs-Fine-tune Workbench: the router. Page config, session defaults, sidebar, navigation.

The pages live in ``views/``, not ``pages/``: Streamlit also runs files in a ``pages/`` folder as
old-style pages, and a link straight to ``/compare`` on a freshly started server would then skip
this router (no session defaults, no workspace from the URL)."""

import logging

import streamlit as st

from workbench import models, paths, workshop
from workbench.ui.common import PageDone, generator_id, init_session, md_escape, show_error, workspace

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="RAG-vs-Fine-tune Workbench", page_icon=":material/science:", layout="wide")
if workshop.workshop_mode():
    workshop.protect_data_folder()
init_session()
if "workspace" not in st.session_state:  # workshop mode, and the server's hourly limit of new workspaces reached
    show_error(st.session_state["workspace_refused"])
    st.stop()
if (bad := st.session_state.pop("bad_workspace_param", None)) is not None:
    if workshop.workshop_mode():
        st.warning("That link does not open a workspace on this server (a link holds a workspace's private name; "
                   "empty workspaces are removed after an hour). You have a new workspace of your own.",
                   icon=":material/link_off:")
    else:
        st.warning(f"The link asked for workspace “{md_escape(bad)}”, which is not a valid workspace name (lowercase "
                   "letters, digits, '-' or '_'); opened the default workspace instead.", icon=":material/link_off:")

if (new := st.session_state.pop("new_workspace_param", None)) is not None:
    st.info(f"The link opened workspace “{md_escape(new)}”, which did not exist on this server, so it starts empty. "
            "If you expected your documents, adapters and results there, check the name in the link: Home lists "
            "the workspaces that exist.", icon=":material/new_label:")

pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/documents.py", title="Documents", icon=":material/description:"),
    st.Page("views/finetune.py", title="Fine-tune", icon=":material/model_training:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/query_stats:"),
    st.Page("views/costs.py", title="Costs", icon=":material/payments:"),
    st.Page("views/decide.py", title="Decide", icon=":material/recommend:"),
    st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
    st.Page("views/glossary.py", title="Glossary", icon=":material/menu_book:"),
]
if workshop.workshop_mode() or workshop.facilitator_enabled():
    pages.append(st.Page("views/facilitator.py", title="Facilitator", icon=":material/groups:"))
nav = st.navigation(pages)

try:
    nav.run()
except PageDone:  # the page ended early (an empty state, a locked page): the sidebar is still drawn
    pass
except Exception as exc:  # a bug: log it and show a short message, never a traceback
    show_error(exc)

# Drawn after the page so that it reflects what the page just did (a model loaded, a workspace opened).
with st.sidebar:
    st.markdown(f"**Workspace:** `{workshop.short_name(workspace())}`")
    model_id = generator_id() if "workspace" in st.session_state else None
    if model_id:
        remote = models.is_remote(model_id)
        loaded = ("generator", model_id) in models.loaded_models()
        st.markdown(f"**Model:** {md_escape(model_id, 60)}")
        st.caption("Served elsewhere" if remote else "Model loaded in memory" if loaded else "Model loads on first use")
        st.page_link("views/settings.py", label="Change the model", icon=":material/swap_horiz:")
    if not workshop.workshop_mode():  # a visitor of a shared server has no use for the server's paths
        st.caption(f"Data folder: `{paths.home()}`")
