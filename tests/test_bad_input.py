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


def _zip_deflated(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _docx(document_xml):
    """A .docx whose parts are in place, with ``document_xml`` as its main part."""
    return _zip({
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                               'content-types"><Override PartName="/word/document.xml" ContentType="application/'
                               'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                       'relationships"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/'
                       '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": document_xml})


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
    # A .docx whose main part is not XML: the parser's own error, named, not a crash of the whole upload.
    ("doc-docx-bad-xml", ("memo.docx", _docx("<w:document><unclosed>")), "memo.docx: expected a readable docx file"),
    # Entities that expand to gigabytes ("billion laughs"): refused by the parser, said in plain words.
    ("doc-docx-billion-laughs", ("laughs.docx", _docx('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
                             + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
                             + ']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                               '<w:body><w:p><w:r><w:t>&i;</w:t></w:r></w:p></w:body></w:document>')),
     "billion laughs"),
    ("doc-name-too-long", ("n" * 250 + ".md", b"# Title\n\ntext"), "at most 200 characters, got 253"),
    # 64 KB that unpacks to 32 MB: refused before any XML is parsed.
    ("doc-docx-bomb", ("bomb.docx", _zip_deflated({"word/document.xml": b"<" + b"a" * (32 * 2**20)})),
     "unpacks to 32 MB"),
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
    # Hostile lines: each is a reason with its line number, never a crash of the whole file.
    ("pairs-deep-nesting", ("p.jsonl", _pairs([GOOD_PAIR] * 11 + ["[" * 100_000 + "]" * 100_000])),
     "line 12: nested more than"),
    ("pairs-huge-number", ("p.jsonl", _pairs([GOOD_PAIR] * 11 + ['{"prompt": "Q?", "completion": "A", "n": '
                                                                  + "9" * 5001 + "}"])), "line 12: not usable JSON"),
    ("pairs-surrogate", ("p.jsonl", _pairs([GOOD_PAIR] * 11 + ['{"prompt": "Q\\ud800?", "completion": "A"}'])),
     "line 12: holds an unpaired surrogate"),
    ("pairs-csv-huge-field", ("p.csv", b"prompt,completion\nQ?,A\n\"" + b"x" * 200_000 + b"\",y\n"),
     "line 3"),
]
TESTSETS = [
    ("testset-empty", ("t.jsonl", b""), "found an empty file"),
    ("testset-no-reference", ("t.jsonl", b'{"question": "Q?"}'), "line 1"),
    ("testset-bad-answerable", ("t.jsonl", b'{"question": "Q?", "reference": "A", "answerable": "perhaps"}'),
     "line 1"),
    ("testset-csv-header", ("t.csv", b"q,a\nx,y\n"), "'question' and 'reference'"),
    ("testset-extension", ("t.xlsx", b"PK"), ".jsonl or .csv"),
    ("testset-not-utf8", ("t.jsonl", b"\xff\xfe\xfd"), "UTF-8"),
    ("testset-too-many", ("t.jsonl", b"\n".join(json.dumps({"question": f"Q{i}?", "reference": "A"}).encode()
                                                for i in range(2001))), "the limit is 2,000 questions"),
    ("testset-source-number", ("t.jsonl", b'{"question": "Q?", "reference": "A", "source": 5}'), "line 1"),
    ("testset-deep-nesting", ("t.jsonl", b"[" * 100_000 + b"]" * 100_000), "line 1: nested more than"),
    ("testset-huge-number", ("t.jsonl", b'{"question": "Q?", "reference": ' + b"9" * 5001 + b"}"),
     "line 1: not usable JSON"),
    ("testset-surrogate", ("t.jsonl", b'{"question": "Q\\udc00?", "reference": "A"}'), "line 1: holds an unpaired"),
    ("testset-csv-huge-field", ("t.csv", b"question,reference\n\"" + b"x" * 200_000 + b"\",y\n"),
     "line 2"),
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
    # A trailing newline (?workspace=default%0A) must not open a look-alike of another workspace.
    ("workspace-newline", lambda: paths.validate_workspace_name("default\n"), "workspace name"),
    ("adapter-newline", lambda: __import__("workbench.training", fromlist=["x"]).validate_adapter_name("house\n"),
     "adapter"),
    ("workspace-empty", lambda: paths.validate_workspace_name(""), "workspace name"),
    ("workspace-accented", lambda: paths.validate_workspace_name("équipe"), "workspace name"),
    ("adapter-slash", lambda: __import__("workbench.training", fromlist=["x"]).validate_adapter_name("a/b"),
     "adapter"),
]


def _workshop_cases():
    """Input a visitor of a workshop server (WORKBENCH_WORKSHOP=1) can give, and an operator's bad server list."""
    from workbench import models, servers, workshop
    from workbench.config import IndexConfig
    from workbench.index import open_index

    listed = {"generators": {"Team server": "compat:http://127.0.0.1:9/v1#m"}}
    return [
        ("typed-compat-url", {}, lambda: models.remote_generator("compat:http://attacker.example:80/v1#m"), "not one"),
        ("typed-openai", {}, lambda: models.remote_generator("openai:gpt-4o-mini", api_key="sk-x"), "not one"),
        ("typed-local-path", {}, lambda: models.get_generator("hf:/etc"), "not one"),
        ("typed-hub-id", {}, lambda: models.get_generator("hf:someone/some-model"), "not one"),
        ("typed-gguf-path", {}, lambda: models.get_generator("hf:/root/model.gguf"), "not one"),
        ("typed-embedder-path", {}, lambda: models.get_embedder("st:/etc"), "not one"),
        ("typed-embedder-url", {}, lambda: models.get_embedder("compat:http://10.1.2.3/v1#e"), "not one"),
        ("typed-chroma", {}, lambda: open_index("x", IndexConfig(chroma_url="http://169.254.169.254:80")),
         "Chroma servers the operator listed"),
        ("label-upper", {}, lambda: workshop.fresh_workspace_name("Team"), "workspace label"),
        ("label-dash", {}, lambda: workshop.fresh_workspace_name("a-b"), "workspace label"),
        ("label-long", {}, lambda: workshop.fresh_workspace_name("a" * 16), "workspace label"),
        ("new-limit-not-a-number", {workshop.ENV_MAX_NEW: "many"}, lambda: workshop.fresh_workspace_name(),
         "whole number"),
        ("servers-not-json", {servers.ENV_SERVERS: "{generators"}, lambda: servers.allowed(), "to be JSON"),
        ("servers-bad-chroma", {servers.ENV_SERVERS: '{"chroma": {"c": "file:///etc"}}'}, lambda: servers.allowed(),
         "http(s) URL"),
        ("servers-unknown-key", {servers.ENV_SERVERS: json.dumps({**listed, "ssh": {}})}, lambda: servers.allowed(),
         "keys generators, embedders, chroma"),
    ]


@pytest.mark.parametrize("index", range(15))
def test_bad_workshop_input(workbench_home, monkeypatch, index):
    from workbench.index import close_all

    case, env, call, expected = _workshop_cases()[index]
    monkeypatch.setenv("WORKBENCH_WORKSHOP", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    close_all()
    before = _tree(workbench_home)
    with pytest.raises(WorkbenchError) as info:
        call()
    assert expected.lower() in str(info.value).lower(), (case, str(info.value))
    assert _tree(workbench_home) == before
    close_all()


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


def test_the_corpus_has_at_least_eighty_cases():
    assert len(DOCUMENTS) + len(PAIRS) + len(TESTSETS) + len(_settings_cases()) + len(URLS) + len(_workshop_cases()) >= 80


def test_serve_asked_for_a_key_refuses_to_start_without_one(monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.delenv("WORKBENCH_SERVE_API_KEY", raising=False)
    assert main(["serve", "--api-key-env"]) == 2
    err = capsys.readouterr().err
    assert "Expected an API key in WORKBENCH_SERVE_API_KEY" in err and "refusing to serve" in err
    monkeypatch.setenv("WORKBENCH_SERVE_API_KEY", "   ")
    assert main(["serve", "--api-key-env"]) == 2


def test_exported_csv_cells_cannot_run_as_spreadsheet_formulas():
    import csv
    import io

    from workbench.history import export_csv

    rows = [{"question": "=HYPERLINK(\"http://evil.example\")", "answer": "+1", "who": "@me", "score": -0.5,
             "note": "-cmd", "plain": "45 days"}]
    back = next(csv.DictReader(io.StringIO(export_csv(rows).decode())))
    assert back["question"].startswith("'=") and back["answer"] == "'+1" and back["who"] == "'@me"
    assert back["note"] == "'-cmd" and back["score"] == "-0.5" and back["plain"] == "45 days"


def test_a_pdf_text_layer_with_unpaired_surrogates_is_cleaned(monkeypatch):
    from workbench import documents

    monkeypatch.setattr(documents, "_parse_pdf", lambda name, data: ("Returns within 30 days \ud800 of delivery.", []))
    doc = documents.parse_document("odd.pdf", b"%PDF-1.4 stand-in")
    assert "\ud800" not in doc.text and "30 days" in doc.text
    doc.text.encode("utf-8")  # storable and embeddable


def test_index_settings_that_do_not_work_are_never_saved(workbench_home):
    from workbench.config import IndexConfig
    from workbench.index import close_all, open_index, saved_config

    close_all()
    with pytest.raises(WorkbenchError):
        open_index("s", IndexConfig(chroma_url="http://127.0.0.1:9"))  # nothing listens on port 9
    assert saved_config("s") is None  # nothing recorded
    with pytest.raises(WorkbenchError):
        open_index("s2", IndexConfig(embedder_id="st:/no/such/folder"))
    assert saved_config("s2") is None
    close_all()
    assert open_index("s").config == IndexConfig()  # the workspace still opens with the defaults
    close_all()


def test_damaged_records_give_a_clear_message_not_a_crash(workbench_home):
    from workbench.index import close_all, index_dir, open_index
    from workbench.jobs import _jobs_dir, job_history

    jobs = _jobs_dir("d")
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / "broken.json").write_text("{not json")
    (jobs / "list.json").write_text("[1, 2]")
    assert job_history("d") == []  # skipped, the page that lists jobs still draws
    close_all()
    index_dir("d").mkdir(parents=True, exist_ok=True)
    (index_dir("d") / "manifest.json").write_text("{\"documents\": ")
    with pytest.raises(WorkbenchError, match="index record of workspace 'd' .* is damaged"):
        open_index("d")
    assert (index_dir("d") / "manifest.json").read_text() == "{\"documents\": "  # left as found
    close_all()


def test_a_training_preset_without_retrieved_passages_is_refused(workbench_home, capsys):
    from workbench import samples
    from workbench.cli import main

    assert main(["train", str(samples.sample_dir() / "training_pairs.jsonl"), "--preset", "thorough"]) == 2
    assert "--preset sets up retrieval-aware training: add --with-context" in capsys.readouterr().err
