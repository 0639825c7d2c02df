"""Documents: upload files, build the workspace's Chroma index, inspect it, and try retrieval."""

import dataclasses
from datetime import datetime

import pandas as pd
import streamlit as st

from workbench import models, samples
from workbench.charts import stage_timings_chart
from workbench.config import DEFAULT_EMBEDDER, IndexConfig, RetrievalConfig, help_for
from workbench.documents import SUPPORTED, parse_document, parse_uploads
from workbench.errors import WorkbenchError
from workbench.index import open_index, rebuild_index
from workbench.jobs import ACTIVE, DONE, get_index_runner
from workbench.progress import ProgressEvent
from workbench.retrieval import retrieve
from workbench.ui.common import (StatusSink, answer_markdown, job_header, md_escape, server_field, show_error,
                                 stop_page, workspace)
from workbench.ui.jobs import adopt_job, progress_line, watch_job

st.title("Documents")
st.caption(
    "Upload the documents retrieval should draw on. They are split into chunks, embedded and stored in a "
    "Chroma index in this workspace. Adding, replacing or removing a document only touches its own chunks."
)

try:
    index = open_index(workspace())
    st.session_state["index_embedder_id"] = index.config.embedder_id
except WorkbenchError as exc:
    show_error(exc)
    stop_page()


def report_indexing(report, problems=()) -> None:
    """Show what an indexing call did, problems first."""
    for name, message in [(p.name, p.message) for p in problems] + list(report.problems):
        st.warning(md_escape(message, 500), icon=":material/warning:")  # names come from uploads
    done = report.added + report.replaced
    if done:
        st.success(
            f"Indexed {len(done)} document{'s' if len(done) != 1 else ''}: {report.chunks_added} "
            f"chunk{'s' if report.chunks_added != 1 else ''} in {report.seconds:.1f} s "
            f"({report.chunks_per_s:.0f} chunks/s, of which embedding {report.embed_seconds:.1f} s).",
            icon=":material/check_circle:",
        )
    if report.embed_tokens:
        from workbench.pricing import embedding_cost, load_prices

        embedder_id = st.session_state.get("index_embedder_id", "")
        cost = embedding_cost(load_prices(workspace()), embedder_id, report.embed_tokens).usd if embedder_id else None
        st.caption(f"The embedding API counted {report.embed_tokens:,} tokens"
                   + (f" (${cost:.6f} at the price table's price)." if cost is not None else "; no price is known "
                      "for this model, so its cost is not shown."))
    if report.unchanged:
        st.info(f"Already indexed with the same content, skipped: {md_escape(', '.join(report.unchanged), 500)}.")


def upload_cap() -> int:
    """Bytes per file: the smaller of the workbench's limit (WORKBENCH_MAX_UPLOAD_MB) and Streamlit's own cap."""
    from workbench import limits

    return min(limits.value("WORKBENCH_MAX_UPLOAD_MB"), st.get_option("server.maxUploadSize")) * 2**20


def index_files(files: list[tuple[str, bytes]], label: str | None = None) -> None:
    """Read and index ``files`` as a background job (a lane of its own, not behind trainings): a reload
    or another page does not stop it, and the page shows its progress until it ends."""
    cap = upload_cap()
    ws = workspace()

    def work(progress, cancel):
        progress(ProgressEvent("read", 0, len(files), f"Reading {len(files)} file(s)"))
        docs, problems = parse_uploads(files, max_bytes=cap)
        return open_index(ws).add_documents(docs, progress=progress), problems

    job = index_runner.submit("index", ws, label or f"Index {len(files)} file(s)", work)
    st.session_state["documents_job"] = job.id


index_runner = get_index_runner()
adopt_job(index_runner, workspace(), "index", "documents_job")
indexing = index_runner.get(st.session_state.get("documents_job", ""))


def draw_indexing(job) -> None:
    """The running indexing job: its progress; when it ends, its report and a fresh document list."""
    if job.status in ACTIVE:
        with st.container(border=True):
            job_header(index_runner, job, "Uploads are indexed one at a time.")
            progress_line(job)
        return
    st.session_state.pop("documents_job", None)
    if job.status == DONE:
        st.session_state["documents_last_report"] = job.result
    else:
        st.session_state["documents_job_error"] = job.error or f"Indexing {job.status}."
    st.rerun()  # the whole page: the document list now holds what was added


def remove_document(name: str) -> None:
    """Button callback: runs before the page is drawn, so the confirmation box can be reset."""
    try:
        removed = index.remove_document(name)
        st.toast(f"Removed {md_escape(name, 120)} ({removed} chunks).")
    except Exception as exc:
        st.session_state["remove_error"] = exc
    st.session_state["remove_confirm"] = False


tab_docs, tab_search, tab_settings = st.tabs(["Documents", "Search playground", "Chunking and index settings"])

with tab_docs:
    with st.form("upload", clear_on_submit=True):
        uploads = st.file_uploader(
            "Upload documents", accept_multiple_files=True,
            type=sorted({s.lstrip(".") for s in SUPPORTED}),
            help="Text, Markdown, PDF, Word (.docx) and HTML. Files with problems are reported; the others are indexed.",
        )
        submitted = st.form_submit_button("Add to index", icon=":material/upload:", type="primary")
    if submitted:
        if not uploads:
            st.warning("Choose one or more files first.")
        elif indexing is not None and indexing.status in ACTIVE:
            st.warning("The last upload is still being indexed; add these when it has finished (nothing was "
                       "changed).", icon=":material/hourglass_top:")
        else:
            try:
                index_files([(f.name, f.getvalue()) for f in uploads])
                st.rerun()
            except Exception as exc:
                show_error(exc)
    watch_job(index_runner, st.session_state.get("documents_job"), draw_indexing, every=0.5)
    if (failed := st.session_state.pop("documents_job_error", None)) is not None:
        st.error(failed, icon=":material/error:")
    last = st.session_state.pop("documents_last_report", None)
    if last:
        report_indexing(*last)

    docs = index.documents()
    running = index_runner.get(st.session_state.get("documents_job", ""))
    if not docs and running is not None and running.status in ACTIVE:
        st.caption("The documents appear here once the indexing above has finished.")
    elif not docs:
        st.info("No documents yet: upload some above, or start with the sample company's documents.",
                icon=":material/info:")
        if st.button("Load the sample documents", icon=":material/inventory_2:"):
            try:
                index_files(samples.sample_documents(), "Index the sample documents")
                st.rerun()
            except Exception as exc:
                show_error(exc)
    else:
        chunks = sum(d["chunks"] for d in docs)
        st.subheader(f"{len(docs)} document{'s' if len(docs) != 1 else ''}, {chunks} chunk{'s' if chunks != 1 else ''}")
        st.caption(f"Embedder `{index.config.embedder_id}` ({index.config.precision}), "
                   f"{index.config.chunk_tokens}-token chunks with {index.config.overlap_tokens}-token overlap, "
                   f"store: {index.config.chroma_url or 'embedded in this workspace'}.")
        table = pd.DataFrame([{
            "Name": d["name"], "Type": d["kind"], "Characters": d["chars"], "Chunks": d["chunks"],
            "Added": datetime.fromtimestamp(d["added_at"]), "Updated": datetime.fromtimestamp(d["updated_at"]),
        } for d in docs])
        st.dataframe(table, hide_index=True, width="stretch", height=min(35 * (len(docs) + 1) + 3, 600),
                     column_config={"Added": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                                    "Updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})

        name = st.selectbox("Inspect a document", [d["name"] for d in docs], key="documents_selected")
        replaced = st.session_state.pop("documents_replaced", None)
        if replaced:
            st.success(replaced, icon=":material/check_circle:")
        col_preview, col_actions = st.columns([3, 2], gap="large")
        with col_preview:
            try:
                text = index.document_text(name)
                st.markdown("**Text as indexed** (first 3,000 characters)")
                st.code(text[:3000] + ("\n..." if len(text) > 3000 else ""), language=None, wrap_lines=True, height=320)
                with st.expander(f"Chunks of {md_escape(name, 120)}"):
                    for chunk in index.chunks(name):
                        page = f", page {chunk.page}" if chunk.page else ""
                        st.markdown(f"**#{chunk.position + 1}** · {md_escape(chunk.heading or '(no heading)', 200)}{page} · "
                                    f"{chunk.tokens} tokens")
                        st.text(chunk.text[:600])
            except Exception as exc:
                show_error(exc)
        with col_actions:
            st.markdown("**Replace with a new version**")
            st.caption("The new file's text replaces this document's chunks under the same name.")
            with st.form("replace", clear_on_submit=True):
                new_file = st.file_uploader("New version", type=sorted({s.lstrip(".") for s in SUPPORTED}),
                                            key="replace_file")
                do_replace = st.form_submit_button("Replace and re-index", icon=":material/sync:")
            if do_replace:
                if new_file is None:
                    st.warning("Choose the new version first.")
                else:
                    try:
                        doc = parse_document(new_file.name, new_file.getvalue(), max_bytes=upload_cap())
                        report = index.add_documents([dataclasses.replace(doc, name=name)])
                        if report.replaced:
                            st.session_state["documents_replaced"] = (
                                f"Re-indexed {md_escape(name, 120)} in {report.seconds:.2f} s: {report.chunks_removed} old "
                                f"chunks replaced by {report.chunks_added}.")
                            st.rerun()
                        report_indexing(report)
                    except Exception as exc:
                        show_error(exc)
            st.markdown(f"**Remove** {md_escape(name, 120)} from the index")
            confirm = st.checkbox("Yes, remove it", key="remove_confirm")
            st.button("Remove document", icon=":material/delete:", disabled=not confirm,
                      on_click=remove_document, args=(name,))
            error = st.session_state.pop("remove_error", None)
            if error is not None:
                show_error(error)

with tab_search:
    if not index.documents():
        st.info("No index yet: add documents in the Documents tab, then search them here.", icon=":material/info:")
    else:
        with st.form("search"):
            on_sample = samples.looks_like_sample(d["name"] for d in index.documents())
            question = st.text_input("Question", value="How long do I have to return a product?" if on_sample else "",
                                     placeholder="A question your documents answer", max_chars=2000)
            c1, c2, c3 = st.columns(3)
            top_k = c1.number_input("Chunks to return (top k)", 1, 20, 5, help=help_for(RetrievalConfig, "top_k"))
            candidates = c2.number_input("Candidates before reranking", 5, 100, 20,
                                         help=help_for(RetrievalConfig, "candidates"))
            rerank = c3.toggle("Rerank", value=True, help=help_for(RetrievalConfig, "reranker_id"))
            c4, c5, c6 = st.columns(3)
            keyword = c4.toggle("Keyword search (BM25) + fusion", value=True, help=help_for(RetrievalConfig, "keyword"))
            dense_w = c5.number_input("Dense weight in fusion", 0.0, 5.0, 1.0, 0.1)
            keyword_w = c6.number_input("Keyword weight in fusion", 0.0, 5.0, 1.0, 0.1)
            go = st.form_submit_button("Search", icon=":material/search:", type="primary")
        if go and not question.strip():
            st.info("Type a question first.", icon=":material/edit:")
        elif go:
            try:
                config = RetrievalConfig(top_k=int(top_k), candidates=max(int(candidates), int(top_k)), keyword=keyword,
                                         dense_weight=dense_w, keyword_weight=keyword_w, rerank=rerank)
                result = retrieve(index, question, config)
                st.markdown(f"**{len(result.hits)} hits in {result.total_s * 1000:.1f} ms**")
                st.plotly_chart(stage_timings_chart(result.timings, "Retrieval time per stage"), width="stretch")
                if keyword:
                    st.caption(f"Fusion: reciprocal rank fusion, score = {dense_w} / ({config.rrf_k} + dense rank) + "
                               f"{keyword_w} / ({config.rrf_k} + keyword rank).")
                for hit in result.hits:
                    moved = ""
                    if hit.rerank_score is not None and hit.rank_before_rerank is not None:
                        moved = f" (rank {hit.rank_before_rerank} before reranking)"
                    page = f", page {hit.chunk.page}" if hit.chunk.page else ""
                    with st.container(border=True):
                        st.markdown(f"**#{hit.rank}{moved}** · {md_escape(hit.chunk.doc_name, 120)}{page} · "
                                    f"{md_escape(hit.chunk.heading or '(no heading)', 200)}")
                        fmt = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
                        st.caption(
                            f"dense {fmt(hit.dense_score)} (rank {hit.dense_rank or '–'}) · "
                            f"keyword {fmt(hit.keyword_score, 2)} (rank {hit.keyword_rank or '–'}) · "
                            f"fused {fmt(hit.fused_score, 4)} · rerank {fmt(hit.rerank_score)}"
                        )
                        st.markdown(answer_markdown(hit.chunk.text))  # the passage's Markdown, rendered
            except Exception as exc:
                show_error(exc)

with tab_settings:
    current = index.config
    emb = models.get_embedder(current.embedder_id) if index.documents() else None
    limit = emb.max_tokens if emb else 256
    with st.form("index_settings"):
        embedder_id = server_field(
            st, "Embedder", "embedder", value=current.embedder_id, empty=f"{DEFAULT_EMBEDDER} (packaged, offline)",
            empty_id=DEFAULT_EMBEDDER,
            help="local:all-minilm-l6-v2 (packaged, offline), st:<sentence-transformers id or folder>, "
                 "openai:text-embedding-3-small (needs OPENAI_API_KEY or .streamlit/secrets.toml; its tokens are "
                 "counted and priced) or compat:http://HOST:PORT/v1#MODEL. Changing it re-embeds every document.")
        chunk_tokens = st.slider("Chunk size (embedder tokens)", 64, 512, current.chunk_tokens, step=8,
                                 help=help_for(IndexConfig, "chunk_tokens"))
        overlap = st.slider("Overlap (tokens)", 0, 128, current.overlap_tokens, step=2,
                            help=help_for(IndexConfig, "overlap_tokens"))
        precision = st.radio("Embedder precision", ["int8", "fp32"], index=["int8", "fp32"].index(current.precision),
                             horizontal=True, help=help_for(IndexConfig, "precision"))
        chroma_url = server_field(st, "Chroma server (optional)", "chroma", value=current.chroma_url,
                                  empty="embedded in this workspace", placeholder="http://127.0.0.1:8000",
                                  help=help_for(IndexConfig, "chroma_url"))
        apply = st.form_submit_button("Apply (rebuilds the index if it has documents)", icon=":material/build:")
    if chunk_tokens > limit:
        st.warning(f"Chunks of {chunk_tokens} tokens are longer than the {limit} tokens the embedder reads: "
                   "the end of each chunk would be cut off silently and could never be found.",
                   icon=":material/warning:")
    if apply:
        try:
            new = IndexConfig(embedder_id=embedder_id.strip() or current.embedder_id, chunk_tokens=chunk_tokens,
                              overlap_tokens=overlap,
                              precision=precision, chroma_url=chroma_url.strip())
            if new == current:
                st.info("Nothing changed.")
            elif not index.documents() or new.chroma_url != current.chroma_url:
                open_index(workspace(), new)
                st.success("Settings saved.")
            else:
                with st.status("Rebuilding the index...", expanded=True) as status:
                    report = rebuild_index(workspace(), new, progress=StatusSink(status))
                    status.update(label=f"Rebuilt: {report.chunks_added} chunks in {report.seconds:.1f} s",
                                  state="complete", expanded=False)
        except Exception as exc:
            show_error(exc)
