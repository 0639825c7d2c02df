"""Training pairs: every input format, and every bad-input case, with line numbers."""

import json

import pytest

from tests.conftest import ROOT
from workbench.errors import DataError
from workbench.pairs import MIN_PAIRS, read_pairs, split_pairs

SAMPLE = (ROOT / "sample_data" / "training_pairs.jsonl").read_bytes()


def _jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_chat_format_sample():
    pairs, report = read_pairs("training_pairs.jsonl", SAMPLE)
    assert report.format == "chat" and report.usable == 80 and not report.rejected
    first = pairs[0]
    assert first.messages[0][0] == "system" and first.completion.startswith("Summary:")
    assert first.to_chat()["messages"][-1] == {"role": "assistant", "content": first.completion}


def test_alpaca_and_prompt_completion_formats():
    alpaca = _jsonl([{"instruction": f"Question {i}?", "input": "ctx" if i % 2 else "", "output": f"Answer {i}"}
                     for i in range(12)])
    pairs, report = read_pairs("a.jsonl", alpaca)
    assert report.format == "alpaca" and len(pairs) == 12
    assert pairs[1].question == "Question 1?\n\nctx" and pairs[0].question == "Question 0?"
    pc = _jsonl([{"prompt": f"P{i}", "completion": f"C{i}"} for i in range(10)])
    pairs, report = read_pairs("p.jsonl", pc)
    assert report.format == "prompt_completion" and pairs[9].completion == "C9"


def test_csv_with_guessed_and_mapped_columns():
    data = "question,answer,notes\n" + "\n".join(f"Q{i},A{i},x" for i in range(11)) + "\n,,\n"
    pairs, report = read_pairs("p.csv", data.encode())
    assert report.format == "csv" and len(pairs) == 11 and pairs[0].line == 2
    data2 = "a,b\n" + "\n".join(f"Q{i},A{i}" for i in range(10))
    with pytest.raises(DataError, match=r"expected columns for the prompt and the completion; found columns \['a', 'b'\]"):
        read_pairs("p2.csv", data2.encode())
    pairs, _ = read_pairs("p2.csv", data2.encode(), mapping={"prompt": "b", "completion": "a", "system": None})
    assert pairs[0].question == "A0" and pairs[0].completion == "Q0"


def test_broken_line_is_reported_and_good_rows_kept():
    lines = SAMPLE.decode().splitlines()
    lines[4] = '{"messages": [broken'
    data = "\n".join(lines).encode()
    pairs, report = read_pairs("t.jsonl", data)
    assert report.rejected == [(5, "not valid JSON (Expecting value at column 15)")] and len(pairs) == 79
    with pytest.raises(DataError, match=r"t.jsonl, line 5: not valid JSON"):
        read_pairs("t.jsonl", data, strict=True)
    lines[4] = '{"bad json'
    _, report = read_pairs("t.jsonl", "\n".join(lines).encode())
    assert report.rejected == [(5, "not valid JSON (Unterminated string starting at column 2)")]


def test_rows_missing_the_completion():
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(10)]
    rows.append({"messages": [{"role": "user", "content": "no answer"}]})
    rows.append({"prompt": "p", "completion": ""})
    rows.append({"instruction": "i"})
    _, report = read_pairs("m.jsonl", _jsonl(rows))
    reasons = dict(report.rejected)
    assert "last message to be a non-empty assistant answer" in reasons[11]
    assert "non-empty 'completion'" in reasons[12]
    assert "expected 'messages', 'instruction'+'output', 'prompt'+'completion' or 'question'+'answer'" in reasons[13]


@pytest.mark.parametrize("name,data,message", [
    ("empty.jsonl", b"", "found an empty file"),
    ("blank.jsonl", b"\n\n  \n", "found an empty file"),
    ("latin.jsonl", '{"prompt": "caf\u00e9", "completion": "x"}'.encode("latin-1"), "in UTF-8; line 1, column 16 holds byte 0xe9"),
    ("bin.jsonl", b"\x00\x01\x02", "looks binary"),
    ("few.jsonl", _jsonl([{"prompt": f"p{i}", "completion": "c"} for i in range(5)]),
     f"expected at least {MIN_PAIRS} usable pairs to train on, got 5"),
    ("dupes.jsonl", _jsonl([{"prompt": "same", "completion": "same"}] * 20), "got 1 (0 rejected, 19 duplicates)"),
    ("nocols.csv", b"\n\n", "found an empty file"),
    ("emptyhead.csv", b",,\n1,2,3\n", "expected columns for the prompt and the completion"),
])
def test_bad_files_are_refused_with_a_reason(name, data, message):
    with pytest.raises(DataError) as err:
        read_pairs(name, data)
    assert message in str(err.value) and name in str(err.value)


def test_split_is_seeded_and_disjoint():
    pairs, _ = read_pairs("t.jsonl", SAMPLE)
    a_train, a_val = split_pairs(pairs, 0.1, 7)
    b_train, b_val = split_pairs(pairs, 0.1, 7)
    assert a_val == b_val and len(a_val) == 8 and len(a_train) == 72
    assert not {p.line for p in a_val} & {p.line for p in a_train}
    assert split_pairs(pairs, 0.1, 8)[1] != a_val


def test_question_answer_rows_and_the_workspaces_own_saved_pairs_read_back():
    from workbench import paths, samples
    from workbench.training import TRAINING_PAIRS, _save_workspace_pairs

    rows = [{"question": f"q{i}", "answer": f"a{i}", "system": "Be brief."} for i in range(10)]
    rows.append({"question": "no answer", "answer": " "})
    pairs, report = read_pairs("qa.jsonl", _jsonl(rows))
    assert report.format == "question_answer" and len(pairs) == 10
    assert pairs[0].messages == (("system", "Be brief."), ("user", "q0")) and pairs[0].completion == "a0"
    assert "non-empty 'answer'" in dict(report.rejected)[11]
    path = samples.sample_dir() / "training_pairs.jsonl"
    sample, _ = read_pairs(path.name, path.read_bytes())
    _save_workspace_pairs("default", sample)
    saved = paths.workspace_dir("default") / TRAINING_PAIRS
    again, _ = read_pairs(saved.name, saved.read_bytes(), strict=True)
    assert [(p.messages, p.completion) for p in again] == [(p.messages, p.completion) for p in sample]


def test_too_few_pairs_names_every_rejected_line():
    data = (b'{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n{bad\n'
            b'{"prompt": "e"}\n{"messages": [{"role": "user", "content": "f"}]}\n')
    with pytest.raises(DataError) as err:
        read_pairs("few.jsonl", data)
    message = str(err.value)
    assert "got 2" in message and "line 3: not valid JSON" in message and "line 4:" in message and "line 5:" in message
