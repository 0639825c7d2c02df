"""The app under Streamlit's AppTest: pages render without exception, errors are shown, not raised."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def _use(model_id: str, workspace: str = "default") -> None:
    """Choose the workspace's model as the Settings page does."""
    from workbench.model_choice import choose

    choose(workspace, model_id)


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
    next(b for b in at.button if b.label == "Create and open").click()  # nothing typed
    at.run()
    assert not at.exception and "Type a name for the new workspace first" in at.error[0].value


def test_home_quick_ask_streams_an_answer(fake_generator):
    at = _app()
    _use(fake_generator)
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
    for page, hint in (("views/documents.py", "No documents yet"), ("views/finetune.py", "No adapters yet")):
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        assert any(hint in i.value for i in at.info), page


def test_a_workspace_of_ones_own_documents_does_not_start_from_the_sample(fake_generator):
    """Own documents indexed: Fine-tune and Evaluate start from an upload, Compare offers no sample question,
    and an uploaded file is still in use after a visit to another page."""
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index

    close_all()
    open_index("default").add_documents(parse_uploads([("rental-policy.md", b"# Rentals\n\nA day costs 30 pounds.")])[0])
    at = _app()
    _use(fake_generator)
    at.run()
    at.switch_page("views/finetune.py").run()
    assert not at.exception and not at.error
    assert next(r for r in at.radio if r.label == "Where are the pairs?").value == "Upload a file"
    epoch_score = next(n for n in at.number_input if n.label.startswith("Score after each epoch"))
    assert epoch_score.disabled
    at.switch_page("views/evaluate.py").run()
    assert next(r for r in at.radio if r.label == "Which questions?").value == "Upload a file"
    at.switch_page("views/compare.py").run()
    assert not at.exception and not [s for s in at.selectbox if s.label.startswith("Pick a question")]
    assert next(t for t in at.text_input if t.label == "Question").placeholder == "A question your documents answer"
    # An upload is kept for the session: the page shows it again after another page was opened.
    rows = "".join(f'{{"prompt": "How much are {n} days?", "completion": "{30 * n} pounds."}}\n' for n in range(1, 11))
    at.session_state["ft_upload_default"] = ("pairs.jsonl", rows.encode())
    at.switch_page("views/finetune.py").run()
    assert not at.exception
    shown = [c.value.replace("\\", "").replace("\u200b", "") for c in at.caption]  # as text, escapes aside
    assert any("Using pairs.jsonl, uploaded earlier" in c for c in shown)
    assert any(m.label == "Usable pairs" and m.value == "10" for m in at.metric)
    close_all()


def test_finetune_lists_a_stored_adapter_with_its_metadata_and_loss_chart():
    import json

    from workbench.paths import ADAPTER_META
    from workbench.training import adapters_dir

    folder = adapters_dir("default") / "house"
    folder.mkdir(parents=True)
    (folder / ADAPTER_META).write_text(json.dumps({
        "name": "house", "base_model": "local:smollm2-135m", "method": "lora", "created_at": 1_764_000_000.0,
        "wall_s": 71.2, "steps": 30, "train_pairs": 72, "final_train_loss": 1.25, "final_val_loss": 1.5,
        "device": "cpu", "config": {"epochs": 3, "rank": 16}, "data_hash": "abc",
        "history": [{"step": 1, "loss": 2.0}, {"step": 30, "loss": 1.25}],
        "retrieval_aware": {"passages": 1, "sentences": 0}}))
    at = _app().run()
    at.switch_page("views/finetune.py").run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Base model" in d.value.columns)
    row = table[table["Name"] == "house"].iloc[0]
    assert row["Base model"] == "local:smollm2-135m" and row["Pairs"] == 72 and row["Epochs"] == 3
    assert row["Trained on"] == "questions + 1 retrieved passages"
    assert next(s for s in at.selectbox if s.label == "Adapter").value == "house"
    assert at.json and json.loads(at.json[0].value)["data_hash"] == "abc"


def test_retrieval_aware_training_fills_in_its_preset():
    from workbench.raft import RAFT_BALANCED, RAFT_DEFAULTS, RAFT_PRESETS, RAFT_THOROUGH

    at = _app().run()
    at.switch_page("views/finetune.py").run()
    number = lambda label: next(n for n in at.number_input if n.label == label)  # noqa: E731
    assert number("Epochs").value == 3.0 and number("Max length (tokens)").value == 256  # plain training
    next(t for t in at.toggle if t.label.startswith("Train with retrieved passages")).set_value(True).run()
    assert not at.exception and not at.error
    assert number("Epochs").value == RAFT_DEFAULTS.epochs and number("Max length (tokens)").value == 384
    assert number("Layers adapted (top N; 0: all)").value == RAFT_DEFAULTS.top_layers
    next(r for r in at.radio if r.label == "Start from").set_value("thorough").run()
    assert not at.exception and not at.error
    assert number("Passages per pair").value == 3 and number("Layers adapted (top N; 0: all)").value == 0
    assert number("Epochs").value == RAFT_THOROUGH.epochs and number("Max length (tokens)").value == 768
    assert number("LoRA dropout").value == RAFT_THOROUGH.dropout == 0.0
    assert any(RAFT_PRESETS["thorough"].measured in c.value for c in at.caption)
    assert number("Sentences per passage (0: all)").value == 0  # whole passages
    next(r for r in at.radio if r.label == "Start from").set_value("balanced").run()
    assert not at.exception and not at.error
    assert number("Sentences per passage (0: all)").value == RAFT_BALANCED.context_sentences == 5
    assert number("Passages per pair").value == 3 and number("Epochs").value == RAFT_BALANCED.epochs
    assert any(RAFT_PRESETS["balanced"].measured in c.value for c in at.caption)
    at.session_state["ft_name"] = "mine-raft"  # as a submitted form leaves it (a form's fields count on submit)
    at.run()
    # Another page and back: the setup is as it was left, not a plain adapter with a new name.
    at.switch_page("views/glossary.py").run()
    at.switch_page("views/finetune.py").run()
    assert not at.exception and not at.error
    assert next(t for t in at.toggle if t.label.startswith("Train with retrieved passages")).value is True
    assert next(r for r in at.radio if r.label == "Start from").value == "balanced"
    assert number("Sentences per passage (0: all)").value == 5 and number("Max length (tokens)").value == 768
    assert next(t for t in at.text_input if t.label == "Adapter name").value == "mine-raft"


def _compare(at, question, *, blind=False, cache=False):
    next(t for t in at.text_input if t.label == "Question").input(question)
    if blind:
        next(t for t in at.toggle if t.label == "Blind test").set_value(True)
    if cache:
        next(t for t in at.toggle if t.label == "Semantic cache").set_value(True)
    next(b for b in at.button if b.label == "Compare").click()
    return at.run()


def _compare_page(fake_generator):
    at = _app()
    _use(fake_generator)
    at.run()
    return at.switch_page("views/compare.py").run()


def test_compare_runs_base_and_explains_unavailable_modes(fake_generator):
    at = _compare(_compare_page(fake_generator), "Where is my parcel?")
    assert not at.exception and not at.error
    assert any("Echo: Where is my parcel?" in m.value for m in at.markdown)
    infos = [i.value for i in at.info]
    assert any("No documents indexed yet" in v for v in infos) and any("No adapter chosen" in v for v in infos)
    assert any(s.value.startswith("History (1 question)") for s in at.subheader)


def test_a_picked_sample_question_appears_in_the_question_box_at_once(fake_generator):
    at = _compare_page(fake_generator)
    picker = next(s for s in at.selectbox if s.label.startswith("Pick a question"))
    question = picker.options[2]
    picker.set_value(question).run()
    assert not at.exception
    assert next(t for t in at.text_input if t.label == "Question").value == question  # before Compare is pressed


def test_compare_history_survives_a_restart_and_downloads(fake_generator):
    at = _compare(_compare_page(fake_generator), "Where is my parcel?")
    at = _compare(at, "Can I pay by invoice?")
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 4  # this question's stages, distribution, cost, tokens
    again = _compare_page(fake_generator)  # a new session: a restart of the app keeps the history
    assert not again.exception
    assert any(s.value.startswith("History (2 questions)") for s in again.subheader)
    labels = [d.label for d in again.get("download_button")]
    assert "Download answers (CSV)" in labels and "Download runs (JSON)" in labels


def test_compare_charts_one_model_at_a_time(fake_generator):
    """Answers of two models are not mixed in one chart: a Model choice appears, and the history names each
    question's model."""
    import dataclasses

    from workbench.history import get_run, history_dir, list_runs

    at = _compare(_compare_page(fake_generator), "Where is my parcel?")
    run = list_runs("default")[0]
    other = dataclasses.replace(run, id=run.id[:-1] + "x", created_at=run.created_at + 1,
                                answers=[dataclasses.replace(a, model_id="local:gemma3-270m") for a in run.answers])
    (history_dir("default") / f"{other.id}.json").write_text(json.dumps(other.to_dict()))
    assert get_run("default", other.id).answers[0].model_id == "local:gemma3-270m"
    again = _compare_page(fake_generator)
    assert not again.exception
    picker = next(s for s in again.selectbox if s.label == "Model")
    assert picker.value == fake_generator and set(picker.options) == {fake_generator, "local:gemma3-270m"}
    history = next(d for d in again.dataframe if "Model" in d.value.columns)
    assert set(history.value["Model"]) == {fake_generator, "local:gemma3-270m"}


def test_blind_vote_hides_then_reveals_and_tallies(fake_generator):
    at = _compare(_compare_page(fake_generator), "Where is my parcel?", blind=True)
    assert not at.exception
    assert any(m.value.startswith("#### Answer A") for m in at.markdown)
    assert not any("Base" in m.value for m in at.markdown if m.value.startswith("####"))
    # Nothing below the answers gives them away: no charts of this question, no "Fastest" approach.
    assert not at.get("plotly_chart")
    assert any("1 blind question(s) wait for your vote" in c.value for c in at.caption)
    history = at.dataframe[-1].value
    assert list(history["Fastest"]) == ["after your vote"]
    radio = next(r for r in at.radio if r.label == "Which answer is best?")
    assert radio.value is None  # no vote is cast for the person
    next(b for b in at.button if b.label == "Vote and reveal").click()
    at.run()
    assert any("Choose the best answer" in w.value for w in at.warning)
    assert not any("your pick" in m.value for m in at.markdown)
    radio = next(r for r in at.radio if r.label == "Which answer is best?")
    radio.set_value("A")
    next(b for b in at.button if b.label == "Vote and reveal").click()
    at.run()
    assert not at.exception
    assert any("Answer A: Base ★ your pick" in m.value for m in at.markdown)
    assert any("Blind votes" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 4 and "Base" in list(at.dataframe[-1].value["Fastest"])


def test_semantic_cache_hit_is_marked(fake_generator):
    at = _compare(_compare_page(fake_generator), "Where is my parcel?", cache=True)
    at = _compare(at, "Where is my parcel?", cache=True)
    assert not at.exception
    assert any(s.value.startswith("Cache hit: reused the answer") for s in at.success)


@pytest.mark.slow
def test_remove_a_document_after_confirming():
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index

    close_all()
    docs = [d for d in samples.sample_documents() if d[0] in {"faq.md", "returns-policy.md"}]
    open_index("default").add_documents(parse_uploads(docs)[0])
    at = _app().run()
    at.switch_page("views/documents.py").run()
    assert any("2 documents" in s.value for s in at.subheader)
    next(c for c in at.checkbox if c.label.startswith("Yes, remove")).check().run()
    next(b for b in at.button if b.label == "Remove document").click().run()
    assert not at.exception and not at.error
    assert any(s.value.startswith("1 document,") for s in at.subheader)
    assert next(c for c in at.checkbox if c.label.startswith("Yes, remove")).value is False
    close_all()


def test_documents_are_indexed_as_a_job_in_a_lane_of_their_own():
    """Indexing runs outside the page script (a reload does not stop it) and never waits behind a training."""
    import threading
    import time

    from workbench.jobs import DONE, get_index_runner, get_runner

    release = threading.Event()
    training = get_runner().submit("train", "someone", "an hour-long training", lambda p, c: release.wait(60))
    try:
        at = _app().run()
        at.switch_page("views/documents.py").run()
        next(b for b in at.button if b.label == "Load the sample documents").click()
        at.run()
        assert not at.exception
        job = get_index_runner().get(at.session_state["documents_job"])
        assert job.kind == "index" and job.workspace == "default"
        assert not any("No documents yet" in i.value for i in at.info)  # running, or done: never "none yet"
        deadline = time.time() + 120
        while job.status != DONE and time.time() < deadline:
            time.sleep(0.5)
        assert job.status == DONE and training.status == "running"  # it did not queue behind the training
        at.run()
        assert not at.exception and not at.error
        assert any(s.value.startswith("12 documents") for s in at.subheader)
        assert any(m.value.startswith("Indexed 12 documents") for m in at.success)
    finally:
        release.set()


def test_evaluate_page_empty_state_and_sample_set():
    at = _app().run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception and not at.error
    assert any(m.value == "50" for m in at.metric if m.label == "Questions")
    assert any("No evaluation runs yet" in i.value for i in at.info)


@pytest.mark.slow
def test_evaluate_page_shows_a_stored_run(fake_generator, monkeypatch):
    from tests.fakes import EchoGenerator
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.eval_runs import evaluate
    from workbench.strategies import ComparisonSpec
    from workbench.evaluation import read_testset
    from workbench.index import close_all, open_index

    close_all()
    index = open_index("default")
    index.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "faq.md"])[0])
    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    evaluate(items[:3], ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="default", index=index, testset_name="eval_set.jsonl")
    import workbench.estimates

    asked = []  # the approaches the page asks a time estimate for
    real_estimate = workbench.estimates.evaluation_estimate
    monkeypatch.setattr(workbench.estimates, "evaluation_estimate",
                        lambda ws, n, modes, model=None: asked.append(modes) or real_estimate(ws, n, modes, model))
    at = _app().run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) >= 4  # metric bars, two trade-offs, latency box
    labels = [d.label for d in at.get("download_button")]
    assert "Download answers (CSV)" in labels
    summary = at.dataframe[0].value
    assert {"Correct", "95% range", "Partial", "Wrong", "Stale", "Refused", "Declined unanswerable"} <= set(summary)
    assert any("Wilson interval" in c.value for c in at.caption)
    per_question = next(d.value for d in at.dataframe if "base_verdict" in d.value)
    assert set(per_question["base_verdict"]) <= {"correct", "partial", "wrong", "stale", "refused", "unscored"}
    next(t for t in at.toggle if t.label.startswith("Only questions")).set_value(True).run()
    assert not at.exception
    # No adapter and no training pairs: of the five default approaches only base and RAG can run, and the
    # time estimate counts those two, not the three that will be skipped.
    assert asked and set(asked[-1]) == {"base", "rag"}
    close_all()


def test_evaluate_page_shows_the_knowledge_update_question_by_question(fake_generator):
    from tests.fakes import EchoGenerator
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.eval_runs import knowledge_update
    from workbench.evaluation import read_testset
    from workbench.index import close_all, open_index
    from workbench.strategies import ComparisonSpec

    close_all()
    index = open_index("default")
    index.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "returns-policy.md"])[0])
    items, _ = read_testset("eval_set.jsonl", (samples.sample_dir() / "eval_set.jsonl").read_bytes())
    out = knowledge_update(items, ComparisonSpec(("base", "rag"), EchoGenerator()), workspace="default", index=index,
                           updated=samples.updated_document("returns-policy.md"))
    at = _app().run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Right before" in d.value)
    assert list(table.columns) == ["Approach", "Right before", "Those, after", "Updated", "Stale", "Wrong", "Partial",
                                   "Refused", "Time to catch up"]
    questions = out["after"].done  # the update questions, each asked of both approaches
    assert all(cell.endswith(f"of {questions}") for cell in table["Right before"])
    base, rag = (table[table["Approach"] == name].iloc[0] for name in ("Base", "RAG"))
    assert (base["Right before"], base["Those, after"]) == (f"0 of {questions}", "none to follow")
    assert base["Time to catch up"] == "never (knows no documents)"
    # The echo answers with its passages, so RAG follows the document: what it knew it updates, none stale.
    knew = int(rag["Right before"].split()[0])
    assert knew and rag["Those, after"].startswith(f"{knew} updated, 0 stale")
    assert rag["Time to catch up"].endswith("s re-index") and rag["Stale"] == 0
    assert any("adapter" not in m.value and "Latest result" in m.value for m in at.markdown)
    close_all()


def test_prompt_editor_saves_an_edit_and_resets_it(fake_generator):
    from workbench.prompts import load_prompts

    at = _app().run()
    at.switch_page("views/compare.py").run()
    assert not at.exception
    at.text_area(key="compare_prompts_system_base").input("Answer in one short sentence.").run()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception and load_prompts("default").template("base").system == "Answer in one short sentence."
    at.run()
    assert any("Prompts (edited: Base)" in e.label for e in at.expander)
    next(b for b in at.button if b.label == "Reset to default").click().run()
    assert not at.exception and load_prompts("default").edited() == []


def test_workspace_comes_from_the_url_and_a_bad_name_is_refused():
    at = _app()
    at.query_params["workspace"] = "team-b"
    at.run()
    assert not at.exception and at.session_state["workspace"] == "team-b"
    # team-b did not exist: a mistyped link must not look like a workspace whose data was lost.
    assert any("which did not exist on this server, so it starts empty" in i.value for i in at.info)
    again = _app()
    again.query_params["workspace"] = "team-b"
    again.run()  # now it exists: no notice
    assert not again.exception and not any("did not exist" in i.value for i in again.info)
    bad = _app()
    bad.query_params["workspace"] = "../etc"
    bad.run()
    assert not bad.exception and bad.session_state["workspace"] == "default"
    assert any("not a valid workspace name" in w.value for w in bad.warning)
    # Text from the link is shown inert: no link or image can be injected into the page.
    evil = _app()
    evil.query_params["workspace"] = "[click](http://evil.example) ![x](http://evil.example/i.png)"
    evil.run()
    shown = next(w.value for w in evil.warning if "not a valid workspace name" in w.value)
    assert "](http" not in shown and "\\[click\\]" in shown


def test_settings_checks_a_compat_backend_and_keeps_the_key_in_the_session(fake_generator):
    from tests.fakes import EchoGenerator
    from workbench.serve import BackgroundServer, create_app

    with BackgroundServer(create_app(EchoGenerator(), model_name="echo")) as server:
        at = _app().run()
        at.switch_page("views/settings.py").run()
        assert not at.exception
        at.text_input(key="openai_api_key_input").input("sk-session-only-123456").run()
        next(b for b in at.button if b.label == "Use this key for this session").click().run()
        assert at.session_state["openai_api_key"] == "sk-session-only-123456"
        next(t for t in at.text_input if t.label == "Backend id").input(f"compat:{server.base_url}#echo").run()
        next(b for b in at.button if b.label == "Check connection").click().run()
        assert not at.exception and not at.error
        assert any(s.value.startswith("Connected: models listed") for s in at.success)


def test_compare_with_a_remote_backend_that_fails_shows_it_in_its_column(fake_generator):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    at = _compare_page(fake_generator)
    next(t for t in at.text_input if t.label == "Model for Base").input(f"compat:http://127.0.0.1:{dead}/v1#m")
    next(m for m in at.multiselect if m.label == "Approaches").set_value(["base", "finetuned"])
    at = _compare(at, "Where is my parcel?")
    assert not at.exception
    assert any(e.value.startswith("Could not connect to http://127.0.0.1") for e in at.error)
    assert any("No adapter chosen" in i.value for i in at.info)


def test_costs_and_decide_pages_work_on_a_brand_new_workspace():
    at = _app().run()
    at.switch_page("views/costs.py").run()
    assert not at.exception and not at.error
    assert any("Nothing measured yet" in i.value for i in at.info)
    assert any(t.value == "Costs" for t in at.title)
    projection = next(d.value for d in at.dataframe if "Component" in d.value)  # nothing measured: generation is "unknown", not a blank "None"
    total = projection[projection["Component"] == "Total per month"].iloc[0]
    assert all(v == "unknown" for k, v in total.items() if k != "Component")
    at.switch_page("views/decide.py").run()
    assert not at.exception and not at.error
    assert any("No finished evaluation yet" in i.value for i in at.info)
    # No recommendation before the questionnaire is answered.
    assert not at.success and any("recommends nothing before it knows" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Recommend").click()
    at.run()
    assert not at.exception and not at.error
    assert "(from your answers alone)" in at.success[0].value


def test_decide_recommends_differently_for_the_two_situations():
    at = _app().run()
    at.switch_page("views/decide.py").run()

    def answer(changes, citations, strict, qpd, examples):
        at.select_slider[0].set_value(changes)
        next(n for n in at.number_input if n.label == "Queries per day").set_value(qpd)
        next(n for n in at.number_input if n.label.startswith("Labelled")).set_value(examples)
        next(c for c in at.checkbox if c.label.startswith("Answers must cite")).set_value(citations)
        next(c for c in at.checkbox if c.label.startswith("Answers must follow")).set_value(strict)
        next(b for b in at.button if b.label == "Recommend").click()
        at.run()
        assert not at.exception and not at.error
        return at.success[0].value

    assert answer("weekly", True, False, 1000, 40).startswith("**RAG**")
    first = at.success[0].value
    at.switch_page("views/decide.py").run()  # a fresh run of the page, as after navigating back to it
    assert answer("rarely", False, True, 100_000, 2000).startswith("**Fine-tuned**") and first != at.success[0].value


def test_costs_page_shows_a_missing_hardware_price_as_unknown():
    from workbench import pricing

    at = _app().run()
    at.switch_page("views/costs.py").run()
    assert not at.exception
    # The projection inputs are validated at the boundary: a number box cannot go negative, and the
    # price editor's bad cells are refused by validate_prices (tested in test_costs); here the page
    # shows the unknown generation cost when the chosen hardware has no price.
    table = pricing.default_prices()
    pricing.find_price(table, "hardware", pricing.DEFAULT_HARDWARE)["per_hour"] = None
    pricing.save_prices("default", table)
    at.run()
    assert not at.exception and not at.error
    assert any("unknown" in c.value for c in at.caption)


def test_workshop_mode_gives_each_visitor_a_private_workspace_and_lists_only_theirs(monkeypatch):
    from workbench import paths, workshop

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    paths.workspace_dir("team-a")  # someone else's, made with a guessable name
    alice = _app().run()
    mine = alice.session_state["workspace"]
    assert not alice.exception and workshop.is_private_name(mine) and alice.query_params["workspace"] in (mine, [mine])
    assert any(mine in c.value for c in alice.code)  # the private link to bookmark
    bob = _app().run()
    theirs = bob.session_state["workspace"]
    assert theirs != mine
    # Home lists only the visitor's own workspaces, by their short labels.
    assert bob.selectbox[0].options == [workshop.short_name(theirs)]
    next(t for t in bob.text_input if t.label.startswith("New workspace label")).input("second")
    next(b for b in bob.button if b.label == "Create and open").click()
    bob.run()
    second = bob.session_state["workspace"]
    assert second.startswith("second-") and bob.selectbox[0].options == [workshop.short_name(n) for n in (theirs, second)]
    # A guessable name or a look-alike link opens nothing of anyone's: the visitor gets a fresh workspace.
    for link in ("team-a", "default", mine[:-1] + ("0" if mine[-1] != "0" else "1")):
        guest = _app()
        guest.query_params["workspace"] = link
        guest.run()
        assert not guest.exception and guest.session_state["workspace"] not in {"team-a", "default", mine}
        assert any("does not open a workspace" in w.value for w in guest.warning)
    # Alice's link brings her back.
    again = _app()
    again.query_params["workspace"] = mine
    again.run()
    assert again.session_state["workspace"] == mine and not again.warning


def test_workshop_mode_offers_only_the_operators_servers_no_typed_urls(monkeypatch):
    import json

    from workbench import paths, workshop

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-123")
    (paths.home() / "servers.json").write_text(json.dumps({"generators": {"Team server": "compat:http://10.0.0.5/v1#m"},
                                                           "chroma": {"Team Chroma": "http://10.0.0.5:8002"}}))
    at = _app().run()
    fields = {"Backend id", "Embedder", "Chroma server (optional)", "LLM judge (optional, off when empty)"}
    seen = set()
    for page in ("views/settings.py", "views/documents.py", "views/evaluate.py", "views/compare.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        typed = {t.label for t in at.text_input}
        shown = " ".join(e.value for e in [*at.caption, *at.markdown, *at.info, *at.warning])
        assert "OPENAI_API_KEY" not in shown and "sk-canary" not in shown, page  # nor where the server's key is
        assert not typed & fields and not any(label.startswith("Model for") for label in typed), (page, typed)
        seen |= {b.label for b in at.selectbox} & fields
        for box in at.selectbox:
            if box.label == "Backend id":
                assert box.options == ["(pick a server)", "Team server"]
            if box.label == "Chroma server (optional)":
                assert box.options == ["embedded in this workspace", "Team Chroma"]
    assert {"Backend id", "Embedder", "Chroma server (optional)"} <= seen


def test_workshop_mode_refuses_a_new_workspace_past_the_hourly_limit(monkeypatch):
    from workbench import workshop

    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    monkeypatch.setenv(workshop.ENV_MAX_NEW, "1")
    assert not _app().run().exception
    refused = _app().run()
    assert not refused.exception and "workspace" not in refused.session_state
    assert "1 new workspaces in the last hour" in refused.error[0].value


def test_facilitator_page_is_locked_then_lists_workspaces_jobs_and_leaderboard(monkeypatch):
    import threading

    from workbench import workshop
    from workbench.jobs import get_runner

    monkeypatch.setenv(workshop.ENV_PASSPHRASE_HASH, workshop.hash_passphrase("facilitate-me"))
    release = threading.Event()
    runner = get_runner()
    running = runner.submit("evaluate", "team-a", "holds the worker", lambda progress, cancel: release.wait(30))
    queued = runner.submit("train", "team-b", "waits its turn", lambda progress, cancel: None)
    try:
        at = _app().run()
        at.switch_page("views/facilitator.py").run()
        assert not at.exception
        box = next(t for t in at.text_input if t.label == "Facilitator passphrase")
        box.input("not it at all")
        next(b for b in at.button if b.label == "Open").click()
        at.run()
        assert "not the facilitator's" in at.error[0].value
        next(t for t in at.text_input if t.label == "Facilitator passphrase").input("facilitate-me")
        next(b for b in at.button if b.label == "Open").click()
        at.run()
        assert not at.exception and not at.error
        text = " ".join(m.value for m in at.markdown)
        assert "team-a" in text and "team-b" in text and "queued, position 1" in text
        assert any(s.value == "Leaderboard" for s in at.subheader)
        next(b for b in at.button if b.label == "Cancel" and b.key == f"cancel_{queued.id}").click()
        at.run()
        assert queued.status == "cancelled"
    finally:
        release.set()
        runner.cancel(running.id)


def test_glossary_explains_the_words_the_pages_use():
    at = _app().run()
    at.switch_page("views/glossary.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    for term in ("RAG", "Adapter (LoRA, QLoRA)", "LoRA rank", "Token", "Time to first token", "BM25", "Fusion",
                 "Rerank", "Pareto front", "Token F1", "Grounded"):
        assert f"**{term}" in text, term
    at.text_input[0].set_value("wilson").run()
    assert len(at.markdown) >= 1 and "95% range" in " ".join(m.value for m in at.markdown)


def test_settings_chooses_the_workspace_model_and_the_pages_use_it(fake_generator):
    import json

    from workbench.model_choice import generator_for
    from workbench.paths import ADAPTER_META
    from workbench.training import adapters_dir

    at = _app().run()
    at.switch_page("views/settings.py").run()
    assert not at.exception and not at.error
    pick = next(s for s in at.selectbox if s.label == "Model")
    assert pick.value == "local:smollm2-135m"
    pick.set_value("(another model: type its id)").run()
    next(t for t in at.text_input if t.label == "Model id").input("hf:/no/such/model.gguf").run()
    next(b for b in at.button if b.label == "Use this model").click().run()
    assert "cannot be used: No model at /no/such/model.gguf" in at.error[0].value
    assert generator_for("default") == "local:smollm2-135m"  # a refused choice changes nothing

    next(t for t in at.text_input if t.label == "Model id").input(fake_generator).run()
    next(b for b in at.button if b.label == "Use this model").click().run()
    assert not at.exception and not at.error and generator_for("default") == fake_generator
    assert "now uses" in at.success[0].value

    folder = adapters_dir("default") / "house"  # an adapter trained on the packaged model
    folder.mkdir(parents=True)
    (folder / ADAPTER_META).write_text(json.dumps({"name": "house", "base_model": "local:smollm2-135m",
                                                   "created_at": 1.0}))
    at = _compare(at.switch_page("views/compare.py").run(), "Where is my parcel?")
    assert not at.exception and not at.error
    assert any("Echo: Where is my parcel?" in m.value for m in at.markdown)  # the chosen model answered
    assert any("Adapter 'house' was trained on local:smollm2-135m, and this workspace's model is fake:echo" in i.value
               for i in at.info)


def test_a_job_panel_says_how_each_job_ended():
    """The shared job view: Cancel while a job runs, then its own end message for done, cancelled and failed."""

    def page(status: str, error: str | None) -> None:
        from types import SimpleNamespace

        from workbench.ui.jobs import job_panel

        job = SimpleNamespace(id="j1", label="Measure", status=status, error=error, last=None, result=None,
                              workspace="mine", created_at=2.0)
        ahead = [SimpleNamespace(label="Train adapter house", status="running", workspace="mine", created_at=1.0),
                 SimpleNamespace(label="Someone's secret run", status="running", workspace="theirs", created_at=1.5)]
        runner = SimpleNamespace(position=lambda job_id: 1, cancel=lambda job_id: None,
                                 jobs=lambda workspace=None: ahead + [job])
        job_panel(runner, job, starting="Starting...", cancel_label="Cancel it", cancelled="Stopped: nothing kept.",
                  failed="It failed.", done="All done.")

    def shown(status: str, error: str | None = None) -> AppTest:
        at = AppTest.from_function(page, kwargs={"status": status, "error": error}).run()
        assert not at.exception
        return at

    running = shown("running")
    assert [b.label for b in running.button] == ["Cancel it"] and running.get("progress")
    assert [s.value for s in shown("done").success] == ["All done."]
    assert [w.value for w in shown("cancelled").warning] == ["Stopped: nothing kept."]
    assert [e.value for e in shown("failed", "Out of memory").error] == ["Out of memory"]
    assert [e.value for e in shown("interrupted").error] == ["It failed."]
    queued = shown("queued")
    assert not queued.error and "position 1" in queued.info[0].value
    # What it waits for: this workspace's own job by name, another workspace's only counted.
    assert "Train adapter house (running)" in queued.info[0].value.replace("\\", "")
    assert "1 job of other workspaces" in queued.info[0].value and "secret" not in queued.info[0].value


def test_a_reloaded_page_finds_its_workspaces_running_job():
    """A reload starts a new browser session: Fine-tune and Evaluate still show the workspace's running job,
    with its progress and Cancel, instead of looking idle while it runs."""
    import threading

    from workbench.jobs import get_runner
    from workbench.progress import ProgressEvent

    release = threading.Event()

    def work(progress, cancel):
        progress(ProgressEvent("train", 3, 10, "Step 3/10"))
        release.wait(60)

    runner = get_runner()
    training = runner.submit("train", "default", "Train adapter house", work)
    other = runner.submit("evaluate", "someone-else", "Their evaluation", lambda p, c: release.wait(60))
    try:
        at = _app().run()  # a fresh session: it never started the training
        at.switch_page("views/finetune.py").run()
        assert not at.exception
        assert at.session_state["train_job"] == training.id
        assert "Cancel training" in [b.label for b in at.button]
        # A second training queued and then cancelled gives way to the one still running.
        queued = runner.submit("train", "default", "Train adapter second", lambda p, c: None)
        at.session_state["train_job"] = queued.id
        runner.cancel(queued.id)
        at.run()
        assert at.session_state["train_job"] == training.id and "Cancel training" in [b.label for b in at.button]
        at.switch_page("views/evaluate.py").run()
        assert not at.exception and "eval_job" not in at.session_state  # another workspace's job stays theirs
    finally:
        runner.cancel(training.id)
        runner.cancel(other.id)
        release.set()


def test_a_question_stopped_by_leaving_the_page_comes_back(fake_generator):
    """Leaving Compare while answers stream stops them (nobody waits): back on the page, the question is in the
    box again and the page says what happened."""
    at = _compare_page(fake_generator)
    at.session_state["compare_inflight"] = "Where is my parcel?"  # as a run cut off mid-stream leaves it
    at.run()
    assert not at.exception
    assert at.text_input(key="compare_question").value == "Where is my parcel?"
    assert any("stopped when you left the page" in i.value for i in at.info)
    at.run()  # said once
    assert not any("stopped when you left the page" in i.value for i in at.info)
