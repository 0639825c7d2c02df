"""A corpus of bad input across documents, training pairs, test sets, settings and names from URLs.
Each case must give a clear message (what was expected, what was found) and leave the workspace
exactly as it was."""

import hashlib
import io
import json
import zipfile

import pytest

from workbench import paths, samples
from workbench.errors import WorkbenchError


def _tree(root):
    """Every file under the workbench home with its content hash (what 'unchanged' means)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "models" not in p.parts}


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _pairs(lines):
    return "\n".join(lines).encode()


GOOD_PAIR = json.dumps({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]})

# (case id, what it calls, words the message must contain)
DOCUMENTS = [
    ("doc-empty", ("empty.md", b""), "empty"),
    ("doc-whitespace", ("blank.txt", b"   \n\n  "), "expected some text"),
    ("doc-exe", ("tool.exe", b"MZ\x90\x00"), "expected one of"),
    ("doc-no-extension", ("README", b"hello"), "expected one of"),
    ("doc-fake-pdf", ("report.pdf", b"this is not a pdf"), "pdf"),
    ("doc-fake-docx", ("memo.docx", b"not a zip"), "docx"),
    ("doc-docx-without-document", ("memo.docx", _zip({"hello.txt": "hi"})), "docx"),
    ("doc-binary-txt", ("notes.txt", bytes(range(256)) * 4), "text"),
    ("doc-too-big", ("big.md", b"x" * (2 * 1024 * 1024)), "limit"),
    ("doc-html-no-text", ("page.html", b"<html><head><script>var a=1;</script></head><body></body></html>"), "expected some text"),
]
PAIRS = [
    ("pairs-empty", ("p.jsonl", b""), "found an empty file"),
    ("pairs-not-json", ("p.jsonl", _pairs(["not json"] * 12)), "line 1"),
    ("pairs-few", ("p.jsonl", _pairs([GOOD_PAIR] * 3)), "10"),
    ("pairs-no-answer", ("p.jsonl", _pairs([json.dumps({"messages": [{"role": "user", "content": "Q?"}]})] * 12)),
     "line 1"),
    ("pairs-empty-answer", ("p.jsonl", _pairs([json.dumps({"messages": [
        {"role": "user", "content": "Q?"}, {"role": "assistant", "content": ""}]})] * 12)), "line 1"),
    ("pairs-bad-role", ("p.jsonl", _pairs([json.dumps({"messages": [
        {"role": "robot", "content": "Q?"}, {"role": "assistant", "content": "A"}]})] * 12)), "line 1"),
    ("pairs-unknown-format", ("p.jsonl", _pairs([json.dumps({"foo": 1})] * 12)), "expected 'messages'"),
    ("pairs-array", ("p.json", json.dumps([json.loads(GOOD_PAIR)] * 12).encode()), "line"),
    ("pairs-not-utf8", ("p.jsonl", b"\xff\xfe" + "é".encode("latin-1") * 20), "UTF-8"),
    ("pairs-csv-no-columns", ("p.csv", b"a,b\n1,2\n"), "column"),
    ("pairs-wrong-extension", ("p.docx", b"{}"), "expected"),
]
TESTSETS = [
    ("testset-empty", ("t.jsonl", b""), "at least one usable question"),
    ("testset-no-reference", ("t.jsonl", b'{"question": "Q?"}'), "line 1"),
    ("testset-bad-answerable", ("t.jsonl", b'{"question": "Q?", "reference": "A", "answerable": "perhaps"}'),
     "line 1"),
    ("testset-csv-header", ("t.csv", b"q,a\nx,y\n"), "'question' and 'reference'"),
    ("testset-extension", ("t.xlsx", b"PK"), ".jsonl or .csv"),
    ("testset-not-utf8", ("t.jsonl", b"\xff\xfe\xfd"), "UTF-8"),
    ("testset-too-many", ("t.jsonl", b"\n".join(json.dumps({"question": f"Q{i}?", "reference": "A"}).encode()
                                                for i in range(2001))), "the limit is 2,000 questions"),
    ("testset-source-number", ("t.jsonl", b'{"question": "Q?", "reference": "A", "source": 5}'), "line 1"),
]


def _settings_cases():
    from workbench.config import GenerationConfig, IndexConfig, RetrievalConfig, TrainConfig
    from workbench.decision import Answers
    from workbench.formats import FormatCheck
    from workbench.generation.openai_compat import parse_compat_id

    return [
        ("gen-zero-tokens", lambda: GenerationConfig(max_new_tokens=0), "max_new_tokens"),
        ("gen-hot", lambda: GenerationConfig(temperature=5.0), "temperature"),
        ("gen-top-p", lambda: GenerationConfig(top_p=0.0), "top_p"),
        ("gen-penalty", lambda: GenerationConfig(repetition_penalty=0.5), "repetition_penalty"),
        ("train-rank", lambda: TrainConfig(rank=0), "rank"),
        ("train-epochs", lambda: TrainConfig(epochs=-1), "epochs"),
        ("train-lr", lambda: TrainConfig(learning_rate=10.0), "learning"),
        ("train-val", lambda: TrainConfig(val_fraction=0.9), "val"),
        ("index-overlap", lambda: IndexConfig(chunk_tokens=100, overlap_tokens=100), "overlap"),
        ("index-precision", lambda: IndexConfig(precision="int4"), "precision"),
        ("retrieval-top-k", lambda: RetrievalConfig(top_k=0), "top_k"),
        ("format-regex", lambda: FormatCheck(pattern="(unclosed"), "regular expression"),
        ("compat-id", lambda: parse_compat_id("compat:not-a-url#m"), "compat:BASE_URL#MODEL"),
        ("decision-rate", lambda: Answers(data_changes="hourly"), "how often"),
        ("decision-volume", lambda: Answers(queries_per_day=-1), "queries per day"),
    ]


URLS = [
    ("workspace-traversal", lambda: paths.validate_workspace_name("../etc"), "workspace name"),
    ("workspace-space", lambda: paths.validate_workspace_name("my space"), "workspace name"),
    ("workspace-upper", lambda: paths.validate_workspace_name("Team"), "workspace name"),
    ("workspace-long", lambda: paths.validate_workspace_name("a" * 41), "workspace name"),
    ("run-id-traversal", lambda: __import__("workbench.history", fromlist=["x"]).get_run("default", "../x"),
     "letters, digits and dashes"),
    ("eval-id-traversal", lambda: __import__("workbench.eval_runs", fromlist=["x"]).get_eval_run("default", "a/b"),
     "letters, digits and dashes"),
    ("adapter-name", lambda: __import__("workbench.training", fromlist=["x"]).validate_adapter_name("../evil"),
     "adapter"),
]


@pytest.fixture
def indexed(workbench_home):
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index

    close_all()
    index = open_index("default")
    index.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "faq.md"])[0])
    yield index
    close_all()


@pytest.mark.parametrize("case, upload, expected", DOCUMENTS, ids=[c[0] for c in DOCUMENTS])
def test_bad_documents(indexed, workbench_home, case, upload, expected):
    from workbench.documents import parse_uploads

    before = _tree(workbench_home)
    docs, problems = parse_uploads([upload], max_bytes=1024 * 1024)
    assert not docs and len(problems) == 1, problems
    message = problems[0].message
    assert expected.lower() in message.lower() and upload[0] in message, message
    report = indexed.add_documents(docs)
    assert not report.added and _tree(workbench_home) == before


@pytest.mark.parametrize("case, upload, expected", PAIRS, ids=[c[0] for c in PAIRS])
def test_bad_training_pairs(workbench_home, case, upload, expected):
    from workbench.pairs import read_pairs

    before = _tree(workbench_home)
    try:
        pairs, report = read_pairs(*upload)
        message = " | ".join(f"line {line}: {problem}" for line, problem in report.rejected)
        assert report.rejected, f"{case}: accepted"
    except WorkbenchError as exc:
        message = str(exc)
    assert expected.lower() in message.lower(), message
    assert _tree(workbench_home) == before


@pytest.mark.parametrize("case, upload, expected", TESTSETS, ids=[c[0] for c in TESTSETS])
def test_bad_test_sets(workbench_home, case, upload, expected):
    from workbench.evaluation import read_testset

    before = _tree(workbench_home)
    try:
        _, report = read_testset(*upload)
        message = " | ".join(report.problems)
        assert report.problems, f"{case}: accepted"
    except WorkbenchError as exc:
        message = str(exc)
    assert expected.lower() in message.lower(), message
    assert _tree(workbench_home) == before


@pytest.mark.parametrize("index", range(15))
def test_bad_settings(workbench_home, index):
    case, build, expected = _settings_cases()[index]
    before = _tree(workbench_home)
    with pytest.raises(WorkbenchError) as info:
        build()
    assert expected.lower() in str(info.value).lower(), (case, str(info.value))
    assert _tree(workbench_home) == before


@pytest.mark.parametrize("case, call, expected", URLS, ids=[c[0] for c in URLS])
def test_bad_names_from_urls(workbench_home, case, call, expected):
    before = _tree(workbench_home)
    with pytest.raises(WorkbenchError) as info:
        call()
    assert expected.lower() in str(info.value).lower(), str(info.value)
    assert _tree(workbench_home) == before


def test_the_corpus_has_at_least_forty_cases():
    assert len(DOCUMENTS) + len(PAIRS) + len(TESTSETS) + len(_settings_cases()) + len(URLS) >= 40
