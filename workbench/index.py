"""Documents to a Chroma index, one collection per workspace, updated incrementally.

The index records the ``IndexConfig`` that built it (embedder, precision, chunking) in a manifest
and in the Chroma collection; reopening it with another embedder is refused. Adding, replacing or
removing a document touches only that document's chunks, so re-indexing one changed policy takes
seconds. Parsed texts are kept (under their content hash, never the uploaded name) so the index
can be rebuilt with new chunk settings.

    index = open_index("default")
    report = index.add_documents(docs, progress=sink)

Longer than 450 lines because one class keeps Chroma, the manifest, the kept texts and the write lock
in step; split apart, each half could be updated without the other.
"""

from __future__ import annotations

import logging

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlparse

from . import models, paths, servers, workshop
from .config import IndexConfig
from .documents import Document
from .errors import BackendError, ConfigError, DataError
from .progress import ProgressEvent, ProgressSink, null_sink
from .store import atomic_write_json, atomic_write_text, read_json

MANIFEST = "manifest.json"
#: Present while the index is being written; found at open, it means the last write was interrupted.
WRITING_MARK = "writing.mark"
WRITE_LOCK = ".write.lock"
OPEN_LOCK = ".open.lock"
#: How long a write waits for another process's write to the same index before giving up.
WRITE_LOCK_TIMEOUT_S = 1800
HEADING_BUDGET = 24  # tokens kept for the "document > heading" prefix of each chunk
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] count against the embedder's limit


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as indexed."""

    id: str
    """Stable id: document content hash and position."""
    doc_name: str
    """Name of the source document."""
    doc_hash: str
    """Content hash of the source document."""
    position: int
    """0-based position of the chunk within its document."""
    start: int
    """Character offset of the chunk in the document's text."""
    heading: str
    """The section heading path the chunk falls under ("" if none)."""
    page: int | None
    """1-based page for PDFs, else None."""
    text: str
    """The chunk's text (without the heading prefix)."""
    tokens: int
    """Embedder tokens of the embedded text (prefix included)."""

    @property
    def embedded_text(self) -> str:
        return embedded_text(self.doc_name, self.heading, self.text)

    def metadata(self) -> dict[str, Any]:
        meta = {"doc_name": self.doc_name, "doc_hash": self.doc_hash, "position": self.position,
                "start": self.start, "heading": self.heading, "tokens": self.tokens}
        if self.page is not None:
            meta["page"] = self.page
        return meta

    @classmethod
    def from_chroma(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> "Chunk":
        prefix = f"{_prefix(meta['doc_name'], meta.get('heading', ''))}\n"
        body = text[len(prefix):] if text.startswith(prefix) else text
        return cls(chunk_id, meta["doc_name"], meta["doc_hash"], int(meta["position"]), int(meta["start"]),
                   meta.get("heading", ""), meta.get("page"), body, int(meta.get("tokens", 0)))


def _prefix(doc_name: str, heading: str) -> str:
    return f"{doc_name} > {heading}" if heading else doc_name


def embedded_text(doc_name: str, heading: str, text: str) -> str:
    """What is embedded for a chunk: a short "document > heading" line, then the text."""
    return f"{_prefix(doc_name, heading)}\n{text}"


@dataclass
class IndexReport:
    """What one indexing call did."""

    added: list[str] = field(default_factory=list)
    """Documents added."""
    replaced: list[str] = field(default_factory=list)
    """Documents whose old version was replaced."""
    unchanged: list[str] = field(default_factory=list)
    """Documents skipped because the same content is already indexed."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(name, message) for documents that were not indexed."""
    chunks_added: int = 0
    """Chunks embedded and written."""
    chunks_removed: int = 0
    """Chunks deleted (replaced or removed documents)."""
    seconds: float = 0.0
    """Wall time of the call."""
    embed_seconds: float = 0.0
    """Part of it spent embedding."""
    embed_tokens: int = 0
    """Tokens a remote embedder reported (what an API bills); 0 for local embedders."""

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_added / self.seconds if self.seconds > 0 else 0.0


# -- chunking ------------------------------------------------------------------------------------

class Chunker:
    """Structure-aware splitting (headings, then paragraphs, sentences, words) measured in the
    embedder's tokens, using the semantic-text-splitter library."""

    def __init__(self, tokenizer_json: str, config: IndexConfig, max_tokens: int):
        from semantic_text_splitter import MarkdownSplitter
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.config = config
        self.max_tokens = max_tokens
        capacity = max(16, config.chunk_tokens - HEADING_BUDGET - _SPECIAL_TOKENS)
        self.splitter = MarkdownSplitter.from_huggingface_tokenizer(
            self.tokenizer, capacity=capacity, overlap=min(config.overlap_tokens, capacity // 2 - 1)
        )

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk(self, doc: Document) -> list[Chunk]:
        headings = _heading_offsets(doc.text)
        chunks = []
        for position, (start, text) in enumerate(self.splitter.chunk_indices(doc.text)):
            heading = _heading_at(headings, start, text)
            heading = _clip_tokens(self, heading, HEADING_BUDGET - len(doc.name) // 4 - 2)
            tokens = self.count(embedded_text(doc.name, heading, text)) + _SPECIAL_TOKENS
            chunks.append(Chunk(f"{doc.content_hash[:16]}-{position:05d}", doc.name, doc.content_hash, position,
                                start, heading, doc.page_at(start), text, tokens))
        return chunks


def _heading_offsets(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) of each Markdown heading line."""
    out, offset = [], 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            title = stripped[level:].strip()
            if 1 <= level <= 6 and title:
                out.append((offset, level, title))
        offset += len(line)
    return out


def _heading_at(headings: list[tuple[int, int, str]], start: int, text: str) -> str:
    """The heading path in force at ``start`` (the chunk's own first heading counts)."""
    first_line_end = start + len(text.split("\n", 1)[0])
    path: dict[int, str] = {}
    for offset, level, title in headings:
        if offset > first_line_end:
            break
        path = {lvl: t for lvl, t in path.items() if lvl < level}
        path[level] = title
    # The document title (level 1) is usually the document itself: keep the deepest two levels.
    titles = [path[lvl] for lvl in sorted(path)]
    return " > ".join(titles[-2:])


def _clip_tokens(chunker: Chunker, text: str, budget: int) -> str:
    budget = max(4, budget)
    while text and chunker.count(text) > budget:
        text = text.rsplit(" ", 1)[0] if " " in text else text[: len(text) // 2]
    return text


# -- the index -----------------------------------------------------------------------------------

_ef_class: Any = None


def embedding_function_class() -> Any:
    """Our Chroma EmbeddingFunction, registered under the name 'workbench' so that a collection
    records (and is reopened with) the embedder id and precision that built it."""
    global _ef_class
    if _ef_class is None:
        from chromadb.api.types import EmbeddingFunction
        from chromadb.utils.embedding_functions import register_embedding_function

        class WorkbenchEmbeddingFunction(EmbeddingFunction):
            def __init__(self, model_id: str, precision: str = "fp32"):
                self.model_id, self.precision = model_id, precision

            def __call__(self, input):  # noqa: A002 (Chroma's parameter name)
                vectors = models.get_embedder(self.model_id, precision=self.precision).embed(list(input))
                return [v for v in vectors]

            @staticmethod
            def name() -> str:
                return "workbench"

            def get_config(self) -> dict[str, Any]:
                return {"model_id": self.model_id, "precision": self.precision}

            @staticmethod
            def build_from_config(config: dict[str, Any]) -> "WorkbenchEmbeddingFunction":
                return WorkbenchEmbeddingFunction(config["model_id"], config.get("precision", "fp32"))

            def default_space(self) -> str:
                return "cosine"

        register_embedding_function(WorkbenchEmbeddingFunction)
        _ef_class = WorkbenchEmbeddingFunction
    return _ef_class


class KnowledgeIndex:
    """The document index of one workspace."""

    def __init__(self, workspace: str, config: IndexConfig, folder: Path, manifest_name: str = MANIFEST):
        self.workspace = workspace
        self.config = config
        self.folder = folder
        self.manifest_name = manifest_name
        self._lock = threading.RLock()
        self._collection: Any = None
        self._keyword: Any = None  # (revision, bm25 retriever, chunk ids)
        manifest = _read_manifest(folder / manifest_name, workspace)
        try:
            self._manifest_stamp: int | None = (folder / manifest_name).stat().st_mtime_ns
        except OSError:
            self._manifest_stamp = None
        self._documents: dict[str, dict[str, Any]] = manifest.get("documents", {})
        self.revision: int = manifest.get("revision", 0)
        #: The Chroma collection; a rebuild fills a new one and switches over when it is complete.
        self.collection_name: str = manifest.get("collection") or collection_base(workspace)
        #: What ``repair`` did when this index was opened after an interrupted write (None: nothing to do).
        self.last_repair: dict[str, Any] | None = None

    def embedder(self):
        return models.get_embedder(self.config.embedder_id, precision=self.config.precision)

    # -- crash safety ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the workspace's write lock (across processes: the app and the CLI, or two CLI runs), take
        in what another process wrote meanwhile, and mark the index as being written; a process killed
        inside leaves the mark for ``repair``."""
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / WRITE_LOCK))
        try:
            lock.acquire(timeout=WRITE_LOCK_TIMEOUT_S)
        except Timeout:
            raise BackendError(f"Another process has been writing the index of {self.workspace!r} for over "
                               f"{WRITE_LOCK_TIMEOUT_S // 60} minutes; nothing was changed.",
                               fix="Wait for it to finish (or stop it), then try again.") from None
        try:
            self._reload()
            marker = self.folder / WRITING_MARK
            atomic_write_text(marker, f"{os.getpid()} {time.time()}")
            yield
            marker.unlink(missing_ok=True)
        finally:
            lock.release()

    def _reload(self) -> None:
        """Adopt the manifest on disk when another process saved a newer one."""
        path = self.folder / self.manifest_name
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return
        if stamp == self._manifest_stamp:
            return
        manifest = _read_manifest(path, self.workspace)
        if manifest.get("revision", 0) != self.revision or manifest.get("documents", {}) != self._documents:
            self._documents = manifest.get("documents", {})
            self.revision = manifest.get("revision", 0)
            self._keyword = None
        self._manifest_stamp = stamp

    def needs_repair(self) -> bool:
        return (self.folder / WRITING_MARK).exists()

    def repair(self) -> dict[str, Any]:
        """After an interrupted write: drop chunks that no recorded document owns, and re-embed (from the
        stored text) any recorded document whose chunks are incomplete. Returns what it did."""
        collection = self.collection()
        got = collection.get(include=["metadatas"])
        owned: dict[str, int] = {}
        orphans = []
        for chunk_id, meta in zip(got["ids"], got["metadatas"]):
            rec = self._documents.get(meta.get("doc_name"))
            if rec is None or rec.get("hash") != meta.get("doc_hash"):
                orphans.append(chunk_id)
            else:
                owned[meta["doc_name"]] = owned.get(meta["doc_name"], 0) + 1
        for i in range(0, len(orphans), 1000):
            collection.delete(ids=orphans[i:i + 1000])
        broken = [name for name, rec in self._documents.items() if owned.get(name, 0) != rec.get("chunks")]
        for name in broken:
            rec = self._documents.pop(name)
            text_path = self._text_path(rec["hash"])
            if not text_path.exists():
                continue  # nothing to rebuild it from: it stays out of the index
            doc = Document(name=name, kind=rec.get("kind", "md"), text=text_path.read_text(encoding="utf-8"),
                           size_bytes=rec.get("size_bytes", 0))
            stale = collection.get(where={"doc_name": name}, include=[])["ids"]
            if stale:
                collection.delete(ids=stale)
            self.add_documents([doc])
        self._save_manifest()
        (self.folder / WRITING_MARK).unlink(missing_ok=True)
        self._keyword = None
        return {"orphan_chunks_removed": len(orphans), "documents_reembedded": broken}

    def chunker(self) -> Chunker:
        emb = models.get_embedder(self.config.embedder_id)
        return Chunker(emb.tokenizer_json(), self.config, emb.max_tokens)

    def client(self) -> Any:
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False)
        if self.config.chroma_url:
            servers.check_chroma(self.config.chroma_url)  # workshop mode: only the operator's Chroma servers
            url = urlparse(self.config.chroma_url)
            try:
                return chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                           ssl=url.scheme == "https", settings=settings)
            except Exception as exc:  # connection refused, DNS ...
                raise BackendError(f"Could not reach the Chroma server at {self.config.chroma_url}: {exc}",
                                   fix="Start it with: chroma run --path DIR --port PORT") from exc
        from filelock import FileLock

        # Chroma creates its tables when a client first opens the folder; two processes opening a new
        # workspace at once would both try ("table collections already exists"), so they take turns.
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / OPEN_LOCK), timeout=WRITE_LOCK_TIMEOUT_S):
            return chromadb.PersistentClient(path=str(self.folder / "chroma"), settings=settings)

    def collection(self) -> Any:
        with self._lock:
            if self._collection is None:
                ef = embedding_function_class()(self.config.embedder_id, self.config.precision)
                meta = {"embedder_id": self.config.embedder_id, "precision": self.config.precision,
                        "chunk_tokens": self.config.chunk_tokens, "overlap_tokens": self.config.overlap_tokens}
                client = self.client()
                try:
                    existing = client.get_collection(self.collection_name, embedding_function=ef)
                except Exception:  # not there yet (the error type differs between local and server)
                    existing = None
                if existing is not None:
                    _refuse_mismatch(existing.metadata or {}, self.config, self.collection_name)
                    self._collection = existing
                else:
                    self._collection = self._create_collection(client, ef, meta)
            return self._collection

    def _create_collection(self, client: Any, ef: Any, meta: dict[str, Any]) -> Any:
        """Create the collection; when another process created it first (two indexing runs starting at once),
        open theirs instead."""
        try:
            return client.create_collection(self.collection_name, embedding_function=ef, metadata=meta,
                                            configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:
            if "already exists" not in str(exc):
                raise
            existing = client.get_collection(self.collection_name, embedding_function=ef)
            _refuse_mismatch(existing.metadata or {}, self.config, self.collection_name)
            return existing

    def _manifest(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "revision": self.revision, "collection": self.collection_name,
                "documents": self._documents}

    def _save_manifest(self) -> None:
        self.revision += 1
        atomic_write_json(self.folder / self.manifest_name, self._manifest())
        self._manifest_stamp = (self.folder / self.manifest_name).stat().st_mtime_ns

    def _text_path(self, content_hash: str) -> Path:
        return self.folder / "texts" / f"{content_hash}.txt"

    # -- reading ---------------------------------------------------------------------------------
    def documents(self) -> list[dict[str, Any]]:
        """One record per indexed document: name, kind, chars, chunks, hash, added_at, updated_at."""
        with self._lock:
            self._reload()  # another process may have written since
        return [dict(name=name, **rec) for name, rec in sorted(self._documents.items())]

    def fingerprint(self) -> str:
        """Changes whenever the indexed content or the chunking/embedding settings change."""
        import hashlib

        key = json.dumps([self.config.to_dict(), sorted((n, r.get("hash")) for n, r in self._documents.items())])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def document_text(self, name: str) -> str:
        rec = self._documents.get(name)
        if rec is None:
            raise DataError(f"Expected an indexed document named {name!r}; there is none.")
        return self._text_path(rec["hash"]).read_text(encoding="utf-8")

    def count(self) -> int:
        return self.collection().count() if self._documents or self.config.chroma_url else 0

    def chunks(self, doc_name: str | None = None) -> list[Chunk]:
        where = {"doc_name": doc_name} if doc_name else None
        got = self.collection().get(where=where, include=["documents", "metadatas"])
        chunks = [Chunk.from_chroma(i, t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(chunks, key=lambda c: (c.doc_name, c.position))

    # -- writing ---------------------------------------------------------------------------------
    def add_documents(self, docs: Iterable[Document], progress: ProgressSink = null_sink) -> IndexReport:
        """Add new documents, replace changed ones (same name, new content), skip unchanged ones.

        The report's seconds start after the embedder has loaded: they measure indexing, not loading."""
        progress(ProgressEvent("load", 0, 1, f"Loading embedder {self.config.embedder_id}"))
        chunker = self.chunker()
        embedder = self.embedder()
        collection = self.collection()
        started = time.perf_counter()
        report = IndexReport()
        docs = list(docs)
        by_hash = {rec["hash"]: name for name, rec in self._documents.items()}
        todo: list[Document] = []
        for doc in docs:
            current = self._documents.get(doc.name)
            if current and current["hash"] == doc.content_hash:
                report.unchanged.append(doc.name)
            elif doc.content_hash in by_hash and by_hash[doc.content_hash] != doc.name:
                report.problems.append((doc.name, f"{doc.name}: same content as the indexed document "
                                                  f"{by_hash[doc.content_hash]}; skipped."))
            else:
                todo.append(doc)
        from . import limits

        room = limits.value("WORKBENCH_MAX_DOCUMENTS") - len(self._documents)
        new_names = [d.name for d in todo if d.name not in self._documents]
        if len(new_names) > room:
            refused = set(new_names[max(0, room):])
            error = limits.exceeded("WORKBENCH_MAX_DOCUMENTS", len(self._documents) + len(new_names))
            for name in sorted(refused):
                report.problems.append((name, f"{name}: not indexed, {error} {error.fix}"))
            todo = [d for d in todo if d.name not in refused]
        if not todo:
            report.seconds = time.perf_counter() - started
            return report
        progress(ProgressEvent("chunk", 0, len(todo), "Splitting documents into chunks"))
        planned = [(doc, chunker.chunk(doc)) for doc in todo]
        total = sum(len(c) for _, c in planned)
        done = 0
        progress(ProgressEvent("embed", 0, total, f"Embedding {total} chunks"))
        with self._lock, self._writing():
            for doc, chunks in planned:
                if not chunks:
                    report.problems.append((doc.name, f"{doc.name}: produced no chunks; skipped."))
                    continue
                t0 = time.perf_counter()
                used = getattr(embedder, "tokens_used", None)
                vectors = embedder.embed([c.embedded_text for c in chunks])
                report.embed_seconds += time.perf_counter() - t0
                if used is not None:  # a remote embedder that bills per token
                    report.embed_tokens += embedder.tokens_used - used
                old = self._documents.get(doc.name)
                if old:  # replace: drop the old version's chunks first
                    old_ids = collection.get(where={"doc_name": doc.name}, include=[])["ids"]
                    if old_ids:
                        collection.delete(ids=old_ids)
                    report.chunks_removed += len(old_ids)
                for i in range(0, len(chunks), 1000):  # stay under Chroma's batch limit
                    part = chunks[i:i + 1000]
                    collection.upsert(ids=[c.id for c in part], embeddings=[v for v in vectors[i:i + 1000]],
                                      documents=[c.embedded_text for c in part],
                                      metadatas=[c.metadata() for c in part])
                atomic_write_text(self._text_path(doc.content_hash), doc.text)
                now = time.time()
                self._documents[doc.name] = {
                    "kind": doc.kind, "chars": doc.chars, "chunks": len(chunks), "hash": doc.content_hash,
                    "size_bytes": doc.size_bytes, "added_at": old["added_at"] if old else now, "updated_at": now,
                }
                self._save_manifest()
                if old and old["hash"] != doc.content_hash and \
                        old["hash"] not in {r["hash"] for r in self._documents.values()}:
                    self._text_path(old["hash"]).unlink(missing_ok=True)  # the replaced version's text
                (report.replaced if old else report.added).append(doc.name)
                report.chunks_added += len(chunks)
                done += len(chunks)
                progress(ProgressEvent("embed", done, total, f"Indexed {doc.name}",
                                       {"chunks_per_s": done / max(1e-9, time.perf_counter() - started)}))
            self._keyword = None
        report.seconds = time.perf_counter() - started
        return report

    def remove_document(self, name: str) -> int:
        """Remove a document and its chunks; returns the number of chunks removed."""
        if name not in self._documents:
            raise DataError(f"Expected an indexed document named {name!r}; there is none.")
        with self._lock, self._writing():
            collection = self.collection()
            ids = collection.get(where={"doc_name": name}, include=[])["ids"]
            if ids:
                collection.delete(ids=ids)
            rec = self._documents.pop(name)
            self._save_manifest()
            if rec["hash"] not in {r["hash"] for r in self._documents.values()}:
                self._text_path(rec["hash"]).unlink(missing_ok=True)
            self._keyword = None
            return len(ids)

    def stored_documents(self) -> list[Document]:
        """The parsed documents as they were indexed (for a rebuild with new settings)."""
        return [Document(name=name, kind=rec["kind"], text=self.document_text(name), size_bytes=rec["size_bytes"],
                         content_hash=rec["hash"]) for name, rec in sorted(self._documents.items())]

    # -- keyword search support --------------------------------------------------------------------
    def keyword_index(self) -> tuple[Any, list[str]]:
        """A BM25 index over all chunk texts, rebuilt when the index changed (bm25s)."""
        with self._lock:
            if self._keyword is None or self._keyword[0] != self.revision:
                import bm25s

                got = self.collection().get(include=["documents"])
                ids, texts = got["ids"], got["documents"]
                retriever = bm25s.BM25()
                if texts:
                    retriever.index(bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False),
                                    show_progress=False)
                self._keyword = (self.revision, retriever, ids)
            return self._keyword[1], self._keyword[2]


def _refuse_mismatch(meta: dict[str, Any], config: IndexConfig, name: str) -> None:
    built_with = (meta.get("embedder_id"), meta.get("precision"))
    if built_with != (config.embedder_id, config.precision):
        raise ConfigError(
            f"The index {name!r} was built with embedder {built_with[0]} ({built_with[1]}); expected "
            f"{config.embedder_id} ({config.precision}). Vectors from different embedders cannot be compared.",
            fix="Open it with the embedder that built it, or rebuild the index with the new embedder.",
        )


_open: dict[str, KnowledgeIndex] = {}
_open_lock = threading.Lock()


def index_dir(workspace: str) -> Path:
    return paths.workspace_dir(workspace) / "index"


def _read_manifest(path: Path, workspace: str) -> dict[str, Any]:
    """The index's record ({} when there is none); a damaged one is a clear error, not a crash."""
    try:
        manifest = read_json(path, None) or {}
    except (OSError, ValueError) as exc:
        raise DataError(f"The index record of workspace {workspace!r} ({path.name}) is damaged and cannot be read "
                        f"({str(exc)[:120]}); nothing was changed.",
                        fix=f"Restore {path} from a backup, or move the workspace's index folder aside and add the "
                            "documents again.") from None
    if not isinstance(manifest, dict):
        raise DataError(f"The index record of workspace {workspace!r} ({path.name}) is damaged: expected a JSON "
                        f"object, found {type(manifest).__name__}; nothing was changed.")
    return manifest


def saved_config(workspace: str) -> IndexConfig | None:
    """The config recorded by the workspace's index, if it has one."""
    manifest = _read_manifest(index_dir(workspace) / MANIFEST, workspace)
    return IndexConfig(**manifest["config"]) if manifest and "config" in manifest else None


def open_index(workspace: str = paths.DEFAULT_WORKSPACE, config: IndexConfig | None = None) -> KnowledgeIndex:
    """The workspace's index (one object per process).

    With no ``config``: the config it was built with (or the defaults for a new one). A ``config``
    that differs from the recorded one is adopted only while the index is empty; otherwise a
    different embedder is refused and different chunking asks for ``rebuild_index``.
    """
    folder = index_dir(workspace)
    with _open_lock:
        index = _open.get(str(folder))
        if index is None:
            saved = saved_config(workspace)
            index = KnowledgeIndex(workspace, saved or config or IndexConfig(), folder)
            if saved is None:
                if config is not None and config != IndexConfig():
                    _verify_config(index)  # a setting that does not work is never recorded
                folder.mkdir(parents=True, exist_ok=True)
                index._save_manifest()
            elif index.needs_repair():  # the last write was interrupted (a crash or a kill)
                index.last_repair = index.repair()
            _open[str(folder)] = index
        if config is not None and config != index.config:
            if index.documents():
                if (config.embedder_id, config.precision) != (index.config.embedder_id, index.config.precision):
                    _refuse_mismatch({"embedder_id": index.config.embedder_id,
                                      "precision": index.config.precision}, config, workspace)
                raise ConfigError(
                    f"The index of {workspace!r} was built with {index.config.chunk_tokens}-token chunks "
                    f"(overlap {index.config.overlap_tokens}, store {index.config.chroma_url or 'embedded'}); "
                    f"expected {config.chunk_tokens} (overlap {config.overlap_tokens}, store "
                    f"{config.chroma_url or 'embedded'}).",
                    fix="Rebuild the index with the new settings (it keeps every document).",
                )
            candidate = KnowledgeIndex(workspace, config, folder)
            _verify_config(candidate)  # a setting that does not work is never recorded
            index = candidate
            index._save_manifest()
            _open[str(folder)] = index
        return index


def collection_base(workspace: str) -> str:
    """The Chroma collection name for a workspace's index. A private workspace's name is its link's secret,
    and a shared Chroma server lists its collections to anyone who can reach it: those get a one-way
    digest of the name instead."""
    import hashlib

    if workshop.is_private_name(workspace):
        return "wb-" + hashlib.sha256(workspace.encode()).hexdigest()[:24]
    return f"wb-{workspace}"


def _verify_config(index: KnowledgeIndex) -> None:
    """Prove an index's settings work before they are saved: its embedder loads and embeds, and a Chroma
    server, when one is named, answers. Raises the clear error of whichever fails."""
    servers.check_chroma(index.config.chroma_url)
    models.get_embedder(index.config.embedder_id, precision=index.config.precision).embed(["settings check"])
    if index.config.chroma_url:
        try:
            index.client().heartbeat()
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"Could not reach the Chroma server at {index.config.chroma_url}: {exc}",
                               fix="Start it with: chroma run --path DIR --port PORT, or leave the field empty "
                                   "for the embedded index.") from exc


def rebuild_index(workspace: str, config: IndexConfig, progress: ProgressSink = null_sink) -> IndexReport:
    """Re-chunk and re-embed every stored document with ``config`` (a new chunk size or embedder).

    The new chunks go into a new collection; the manifest switches to it only once it is complete,
    so a cancelled or failed rebuild leaves the old index as it was.
    """
    old = open_index(workspace)
    docs = old.stored_documents()
    staging = "manifest.rebuilding.json"
    fresh = KnowledgeIndex(workspace, config, old.folder, manifest_name=staging)
    fresh._documents, fresh.revision = {}, old.revision
    fresh.collection_name = f"{collection_base(workspace)}-r{old.revision + 1}"
    report = fresh.add_documents(docs, progress)
    with _open_lock:
        fresh.manifest_name = MANIFEST
        fresh._save_manifest()
        (old.folder / staging).unlink(missing_ok=True)
        _open[str(old.folder)] = fresh
    try:
        old.client().delete_collection(old.collection_name)
    except Exception:  # already gone: nothing to clean up
        pass
    return report


def close_all() -> None:
    """Forget open indexes (tests, and after a workspace is deleted)."""
    with _open_lock:
        _open.clear()


def _forget_store(chroma_path: Path) -> None:
    """Stop Chroma's cached system for a folder, so that a folder removed (or copied over) and created
    again is opened afresh instead of through handles to deleted files."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        with SharedSystemClient._refcount_lock:
            SharedSystemClient._identifier_to_refcount.pop(str(chroma_path), None)
        system = SharedSystemClient._identifier_to_system.pop(str(chroma_path), None)
        if system is not None:
            system.stop()
    except Exception:  # noqa: BLE001 - nothing cached, or another chromadb layout: nothing to forget
        log.debug("no Chroma system to forget for %s", chroma_path, exc_info=True)


def close_folder(folder: Path) -> None:
    """Forget the index stored in ``folder`` (its object and its Chroma handles)."""
    with _open_lock:
        _open.pop(str(folder), None)
    _forget_store(folder / "chroma")


def close_workspace(workspace: str) -> None:
    """Forget a workspace's open index before its folder is reset, deleted or replaced."""
    close_folder(paths.workspaces_dir() / paths.validate_workspace_name(workspace) / "index")


workshop.on_remove(close_workspace)


def open_index_at(folder: Path, name: str = "sample", config: IndexConfig | None = None) -> KnowledgeIndex:
    """An index in a folder of its own, outside any workspace (the shared sample)."""
    folder.mkdir(parents=True, exist_ok=True)
    with _open_lock:
        index = _open.get(str(folder))
        if index is None:
            index = KnowledgeIndex(name, config or IndexConfig(), folder)
            if not (folder / MANIFEST).exists():
                index._save_manifest()
            _open[str(folder)] = index
        return index
