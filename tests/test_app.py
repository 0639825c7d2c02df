"""The app under Streamlit's AppTest: pages render without exception, errors are shown, not raised."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)


def test_home_renders_without_exception():
    at = _app().run()
    assert not at.exception
    assert not at.error
    assert at.title[0].value == "RAG-vs-Fine-tune Workbench"
    assert "installed and found offline" in at.success[0].value
    assert any("Workspace" in m.value for m in at.sidebar.markdown)


def test_home_creates_and_opens_a_workspace():
    at = _app().run()
    name_box = next(t for t in at.text_input if t.label == "New workspace name")
    name_box.input("team-a")
    next(b for b in at.button if b.label == "Create and open").click()
    at.run()
    assert not at.exception
    assert at.session_state["workspace"] == "team-a"


def test_home_rejects_a_bad_workspace_name():
    at = _app().run()
    next(t for t in at.text_input if t.label == "New workspace name").input("../evil")
    next(b for b in at.button if b.label == "Create and open").click()
    at.run()
    assert not at.exception
    assert "Expected a workspace name" in at.error[0].value
    assert at.session_state["workspace"] == "default"


def test_home_quick_ask_streams_an_answer(fake_generator):
    at = _app()
    at.session_state["generator_id"] = fake_generator
    at.run()
    next(t for t in at.text_input if t.label == "Question").input("Where is my parcel?")
    next(b for b in at.button if b.label == "Ask").click()
    at.run()
    assert not at.exception and not at.error
    assert any("Echo: Where is my parcel?" in m.value for m in at.markdown)
    labels = [m.label for m in at.metric]
    assert "Time to first token" in labels and "Tokens in / out" in labels


def test_pages_render_on_a_brand_new_workspace():
    at = _app().run()
    for page, hint in (("pages/documents.py", "No documents yet"), ("pages/finetune.py", "No adapters yet")):
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        assert any(hint in i.value for i in at.info), page


def test_compare_runs_base_and_explains_unavailable_modes(fake_generator):
    at = _app()
    at.session_state["generator_id"] = fake_generator
    at.run()
    at.switch_page("pages/compare.py").run()
    next(t for t in at.text_input if t.label == "Question").input("Where is my parcel?")
    next(b for b in at.button if b.label == "Compare").click()
    at.run()
    assert not at.exception and not at.error
    assert any("Echo: Where is my parcel?" in t.value for t in at.text)
    infos = [i.value for i in at.info]
    assert any("No documents indexed yet" in v for v in infos) and any("No adapter chosen" in v for v in infos)


@pytest.mark.slow
def test_remove_a_document_after_confirming():
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index

    close_all()
    docs = [d for d in samples.sample_documents() if d[0] in {"faq.md", "returns-policy.md"}]
    open_index("default").add_documents(parse_uploads(docs)[0])
    at = _app().run()
    at.switch_page("pages/documents.py").run()
    assert any("2 documents" in s.value for s in at.subheader)
    next(c for c in at.checkbox if c.label.startswith("Yes, remove")).check().run()
    next(b for b in at.button if b.label == "Remove document").click().run()
    assert not at.exception and not at.error
    assert any(s.value.startswith("1 document,") for s in at.subheader)
    assert next(c for c in at.checkbox if c.label.startswith("Yes, remove")).value is False
    close_all()
