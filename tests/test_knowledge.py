"""Index and retrieval on the real packaged embedder and real Chroma (embedded and server)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, SHARED_MODELS
from workbench import samples
from workbench.config import IndexConfig, RetrievalConfig
from workbench.documents import parse_document, parse_uploads
from workbench.errors import ConfigError, DataError
from workbench.index import close_all, close_workspace, open_index, rebuild_index
from workbench.progress import ListSink
from workbench.retrieval import retrieve, score_retrieval

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory):
    """The sample documents indexed once for the module (with progress), in a home of its own."""
    home = tmp_path_factory.mktemp("kb") / "wbhome"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        env.setenv("WORKBENCH_MODELS_DIR", str(SHARED_MODELS))
        close_all()
        docs, problems = parse_uploads(samples.sample_documents())
        assert not problems
        index = open_index("kb")
        sink = ListSink()
        report = index.add_documents(docs, progress=sink)
        assert len(report.added) == 12 and report.chunks_added == index.count()
        assert "embed" in sink.stages() and sink.events[-1].step == sink.events[-1].total
        close_workspace("kb")  # the store's files are complete before they are copied
    return home


@pytest.fixture
def sample_index(workbench_home, sample_home):
    """A copy of the module's indexed sample in this test's own home, open."""
    close_all()
    shutil.copytree(sample_home, workbench_home)
    yield open_index("kb")
    close_all()


def test_index_records_its_config_and_chunks_fit_the_embedder(sample_index, workbench_home):
    manifest = json.loads((workbench_home / "workspaces" / "kb" / "index" / "manifest.json").read_text())
    assert manifest["config"]["embedder_id"] == "local:all-minilm-l6-v2"
    assert len(manifest["documents"]) == 12
    assert sample_index.collection().metadata["embedder_id"] == "local:all-minilm-l6-v2"
    assert sample_index.collection().configuration["embedding_function"].name() == "workbench"
    chunks = sample_index.chunks()
    assert max(c.tokens for c in chunks) <= 256
    assert any(c.page == 2 for c in chunks if c.doc_name == "product-catalog.pdf")
    assert any(c.heading.endswith("Our return window") for c in chunks if c.doc_name == "returns-policy.md")


def test_retrieval_finds_the_fact_and_times_every_stage(sample_index):
    result = retrieve(sample_index, "How many days do I have to return a product?")
    assert result.hits[0].chunk.doc_name == "returns-policy.md"
    assert "45 days" in " ".join(h.chunk.text for h in result.hits)
    assert [t.stage for t in result.timings] == ["embed_query", "dense_search", "keyword_search", "fusion", "rerank"]
    assert all(t.seconds >= 0 for t in result.timings)
    top = result.hits[0]
    assert top.rank == 1 and top.rank_before_rerank is not None and top.rerank_score is not None
    dense_only = retrieve(sample_index, "return window", RetrievalConfig(keyword=False, rerank=False))
    assert [t.stage for t in dense_only.timings] == ["embed_query", "dense_search"]
    assert all(h.keyword_score is None and h.rerank_score is None for h in dense_only.hits)


def test_exact_codes_are_found(sample_index):
    result = retrieve(sample_index, "What does error E-410 mean?")
    assert "E-410" in result.hits[0].chunk.text


def test_reranker_improves_on_dense_alone(sample_index):
    import importlib.util

    from workbench.retrieval import clear_rerankers

    clear_rerankers()  # earlier tests' cached sentence vectors must not change this measurement

    spec = importlib.util.spec_from_file_location("tune", ROOT / "bench" / "tune_reranker.py")
    tune = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(tune)
    for rows, margin in ((samples.eval_rows(), 0.0), (tune.training_rows(), 0.1)):
        dense = score_retrieval(sample_index, rows, RetrievalConfig(keyword=False, rerank=False))
        full = score_retrieval(sample_index, rows, RetrievalConfig())
        assert full["chunk_hit_at_k"] >= dense["chunk_hit_at_k"]
        assert full["chunk_mrr"] > dense["chunk_mrr"] + margin, (dense, full)


def test_replacing_a_document_touches_only_its_chunks(sample_index):
    before = {c.id for c in sample_index.chunks() if c.doc_name != "returns-policy.md"}
    old_text = sample_index._text_path(next(d["hash"] for d in sample_index.documents()
                                            if d["name"] == "returns-policy.md"))
    assert old_text.exists()
    name, data = samples.updated_document()
    report = sample_index.add_documents([parse_document(name, data)])
    assert report.replaced == ["returns-policy.md"] and report.chunks_removed > 0
    assert not old_text.exists()  # the replaced version's stored text goes with it
    after = {c.id for c in sample_index.chunks() if c.doc_name != "returns-policy.md"}
    assert before == after
    text = " ".join(h.chunk.text for h in retrieve(sample_index, "How many days do I have to return a product?").hits)
    assert "30 days" in text and "45 days" not in text
    again = sample_index.add_documents([parse_document(name, data)])
    assert again.unchanged == ["returns-policy.md"] and again.chunks_added == 0


def test_reranking_does_not_depend_on_what_was_reranked_before(sample_index):
    """The offline reranker caches sentence vectors: a sentence first embedded beside other sentences must get
    the vector it gets alone, or a question's passages depend on what else this process asked before."""
    from workbench import retrieval
    from workbench.retrieval import sentence_embed, split_sentences

    question = "How many days do I have to return something I bought from you?"

    def scores() -> dict[str, float]:
        return {h.chunk.id: h.rerank_score for h in retrieve(sample_index, question).hits}

    retrieval._rerankers.clear()
    alone = scores()
    retrieval._rerankers.clear()
    sentences = [s for c in sample_index.chunks() for s in split_sentences(c.text)]
    sentence_embed(sample_index)(sentences[::-1])  # every sentence first seen in a batch of 64 others
    again = scores()
    assert list(again) == list(alone)
    assert list(again.values()) == pytest.approx(list(alone.values()), abs=1e-5)


def test_duplicate_content_and_removal(sample_index):
    faq = parse_document("faq.md", (ROOT / "sample_data/documents/faq.md").read_bytes())
    import dataclasses

    report = sample_index.add_documents([dataclasses.replace(faq, name="faq-copy.md")])
    assert report.problems and "same content as the indexed document faq.md" in report.problems[0][1]
    n = sample_index.count()
    removed = sample_index.remove_document("faq.md")
    assert removed > 0 and sample_index.count() == n - removed
    assert "faq.md" not in [d["name"] for d in sample_index.documents()]
    with pytest.raises(DataError, match="no"):
        sample_index.remove_document("faq.md")


def test_embedder_mismatch_is_refused(sample_index):
    from workbench import models

    with pytest.raises(ConfigError, match="built with embedder local:all-minilm-l6-v2"):
        open_index("kb", IndexConfig(embedder_id=f"st:{models.minilm_dir()}"))
    with pytest.raises(ConfigError, match="Vectors from different embedders"):
        open_index("kb", IndexConfig(precision="fp32"))


def test_chunk_change_needs_rebuild_and_rebuild_keeps_documents(sample_index):
    with pytest.raises(ConfigError, match="Rebuild the index"):
        open_index("kb", IndexConfig(chunk_tokens=128))
    old_collection = sample_index.collection_name
    report = rebuild_index("kb", IndexConfig(chunk_tokens=128, overlap_tokens=16))
    index = open_index("kb")
    assert index.config.chunk_tokens == 128 and len(index.documents()) == 12
    assert index.collection_name != old_collection and report.chunks_added == index.count() > 81
    assert max(c.tokens for c in index.chunks()) <= 128


def test_empty_index_says_what_to_do(workbench_home):
    close_all()
    with pytest.raises(DataError, match="upload documents on the Documents page"):
        retrieve(open_index("empty"), "anything")


def test_a_collection_another_process_created_first_is_opened_not_an_error(workbench_home):
    # Two indexing runs start at once: both find no collection, one creates it, and the other's create
    # fails with "already exists". The loser opens the winner's collection and carries on.
    from workbench.index import embedding_function_class

    close_all()
    index = open_index("race")
    config = index.config
    ef = embedding_function_class()(config.embedder_id, config.precision)
    meta = {"embedder_id": config.embedder_id, "precision": config.precision,
            "chunk_tokens": config.chunk_tokens, "overlap_tokens": config.overlap_tokens}
    client = index.client()
    winner = client.create_collection(index.collection_name, embedding_function=ef, metadata=meta)
    winner.add(ids=["x"], documents=["written by the other process"])
    mine = index._create_collection(client, ef, meta)
    assert mine.count() == 1 and mine.get(ids=["x"])["documents"] == ["written by the other process"]
    close_all()


def test_index_survives_a_restart(sample_index, workbench_home):
    env = dict(os.environ, WORKBENCH_HOME=str(workbench_home))
    out = subprocess.run([sys.executable, "-m", "workbench", "search", "What does the FlowMate 8 cost?",
                          "--workspace", "kb", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["hits"]
    assert any(h["doc_name"] == "product-catalog.pdf" and "219" in h["text"] for h in hits)


def test_cli_index_and_search(workbench_home, capsys):
    from workbench.cli import main

    close_all()
    docs = ROOT / "sample_data" / "documents"
    assert main(["index", str(docs / "faq.md"), str(docs / "returns-policy.md"), "--workspace", "cli"]) == 0
    assert "added 2" in capsys.readouterr().out
    assert main(["search", "Can I return an opened product?", "--workspace", "cli"]) == 0
    out = capsys.readouterr().out
    assert "returns-policy.md" in out and "rerank" in out and "total" in out
    assert main(["index", str(docs / "nope.md"), "--workspace", "cli"]) == 2
    close_all()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chroma_server_mode(tmp_path, workbench_home):
    chroma = ROOT / ".venv" / "bin" / "chroma"
    exe = str(chroma) if chroma.exists() else "chroma"
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        close_all()
        config = IndexConfig(chroma_url=f"http://127.0.0.1:{port}")
        index = open_index("shared", config)
        docs, _ = parse_uploads([samples.sample_documents()[7], samples.sample_documents()[1]])
        index.add_documents(docs)
        result = retrieve(index, "How many days do I have to return a product?")
        assert result.hits[0].chunk.doc_name == "returns-policy.md"
        import chromadb

        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        assert client.get_collection("wb-shared").count() == index.count() > 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        close_all()
