"""RAG's passage count chosen on the training pairs (workbench/tuning.py), stored, and used by evaluate."""

import argparse
import re
import threading

import pytest

from tests.fakes import EchoGenerator
from workbench import samples
from workbench.documents import parse_uploads
from workbench.errors import CancelledError, DataError
from workbench.index import open_index
from workbench.pairs import read_pairs
from workbench.tuning import PassageTuning, load_tuning, save_tuning, training_questions, tune_passages, tuned_top_k


class FewPassagesReader(EchoGenerator):
    """Answers right only when its prompt holds at most ``most`` numbered passages (a small model that loses
    the answer among many); counts how often it was asked."""

    model_id = "fake:few-passages"

    def __init__(self, answers: dict[str, str], most: int = 2):
        self.answers, self.most, self.asked = answers, most, 0

    def _execute(self, messages, config, emit, adapter=None):
        self.asked += 1
        user = [m for m in messages if m["role"] == "user"][-1]["content"]
        passages = len(re.findall(r"^\[\d+\] \(", user, flags=re.M))
        question = user.rsplit("Question:", 1)[-1].strip()
        text = self.answers[question] if passages <= self.most else "I am not sure."
        emit(text)
        return self._done(messages, text)

    def _done(self, messages, text):
        from workbench.generation.base import Execution

        return Execution(sum(self.count_tokens(m["content"]) for m in messages), len(text.split()), "stop")


@pytest.fixture(scope="module")
def sample_pairs():
    path = samples.sample_dir() / "training_pairs.jsonl"
    return read_pairs(path.name, path.read_bytes())[0]


def _index(workspace="default"):
    index = open_index(workspace)
    index.add_documents(parse_uploads(samples.sample_documents())[0])
    return index


def test_the_count_with_most_correct_answers_wins_and_a_tie_goes_to_fewer_passages(sample_pairs):
    index = _index()
    questions = training_questions(sample_pairs)
    assert questions and all(q.reference and "Summary:" not in q.reference for q in questions)  # the Answer line
    reader = FewPassagesReader({q.question: q.reference for q in questions}, most=2)
    events = []
    tuning = tune_passages(sample_pairs, index, reader, limit=4, progress=events.append)
    assert tuning.correct == {1: 4, 2: 4, 3: 0, 5: 0}  # every answer judged by the verdict judge
    assert tuning.top_k == 1 and tuning.questions == 4 and reader.asked == 16
    assert tuning.model_id == "fake:few-passages" and tuning.index_fingerprint == index.fingerprint()
    assert "1 passage" in tuning.note() and "4 with 1, 4 with 2, 0 with 3, 0 with 5" in tuning.note()
    assert events[-1].step == events[-1].total == 16
    reader3 = FewPassagesReader(reader.answers, most=3)
    assert tune_passages(sample_pairs, index, reader3, limit=2, candidates=(5, 3)).top_k == 3


def test_the_choice_is_stored_and_applies_only_to_its_model_and_index(sample_pairs):
    index = _index()
    reader = FewPassagesReader({q.question: q.reference for q in training_questions(sample_pairs)}, most=2)
    tuning = tune_passages(sample_pairs, index, reader, limit=2, candidates=(2, 5))
    save_tuning("default", tuning)
    assert load_tuning("default") == tuning
    assert tuned_top_k("default", "fake:few-passages", index).top_k == 2
    assert tuned_top_k("default", "local:smollm2-135m", index) is None  # another model: measure again
    index.add_documents(parse_uploads([("extra.md", b"# Extra\n\nThe office cat is called Miso.")])[0])
    assert tuned_top_k("default", "fake:few-passages", index) is None  # the index changed
    assert load_tuning("nosuch") is None


def test_the_command_line_evaluate_starts_from_the_tuned_count(sample_pairs, capsys):
    from workbench.cli import _passages_for

    index = _index()
    save_tuning("default", PassageTuning(2, {1: 3, 2: 5}, 10, "fake:few-passages", index.fingerprint()))
    args = argparse.Namespace(workspace="default", top_k=None)
    assert _passages_for(args, "fake:few-passages", index, ["rag"]).top_k == 2
    assert "2 passages: RAG's best count on 10 training questions" in capsys.readouterr().err
    assert _passages_for(args, "other:model", index, ["rag"]).top_k == 5
    assert "the default" in capsys.readouterr().err
    assert _passages_for(argparse.Namespace(workspace="default", top_k=3), "fake:few-passages", index,
                         ["rag"]).top_k == 3


def test_bad_input_is_refused_and_a_cancel_stores_nothing(sample_pairs):
    reader = FewPassagesReader({})
    with pytest.raises(DataError, match="documents indexed"):
        tune_passages(sample_pairs, open_index("empty"), reader)
    index = _index()
    refusals = [p for p in sample_pairs if "don't know" in p.completion]
    with pytest.raises(DataError, match="found none"):
        tune_passages(refusals, index, reader)
    with pytest.raises(DataError, match="between 1 and 50"):
        tune_passages(sample_pairs, index, reader, candidates=(0, 2))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        tune_passages(sample_pairs, index, reader, cancel=cancel)
    assert load_tuning("default") is None and reader.asked == 0


def test_a_run_says_how_its_rag_passage_count_stands_against_the_tuned_one():
    from workbench.tuning import run_note

    index = _index()
    config = {"modes": ["base", "rag"], "model_id": "fake:few-passages", "retrieval": {"top_k": 5},
              "index_fingerprint": index.fingerprint()}
    fair, text = run_note("default", config)
    assert not fair and "has not been measured" in text
    save_tuning("default", PassageTuning(2, {2: 5, 5: 3}, 10, "fake:few-passages", index.fingerprint()))
    fair, text = run_note("default", config)
    assert not fair and "its best count is 2" in text and "5 with 2, 3 with 5" in text
    assert run_note("default", config | {"retrieval": {"top_k": 2}})[0]
    assert not run_note("default", config | {"model_id": "other"})[0]  # measured for another model
    assert run_note("default", config | {"modes": ["base"]}) is None


def test_a_bad_top_k_is_refused_before_any_model_loads(capsys):
    from workbench.cli import main

    assert main(["ask", "What is the return window?", "--modes", "rag", "--top-k", "0"]) == 2
    assert main(["evaluate", "--top-k", "51"]) == 2
    err = capsys.readouterr().err
    assert "expected --top-k between 1 and 50, got 0" in err and "got 51" in err
