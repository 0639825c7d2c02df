"""Operations on whole workspaces: what one holds (for the facilitator), reset and delete, the export
of every result, the shared sample workspace, and the server's memory.

These read the records of every other part (index, runs, evaluations, adapters, jobs), so they sit
above them; ``workshop`` (the mode, private names, the facilitator's passphrase) sits below them, so
that the index and the server allow-list can ask it without a circle.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from . import paths
from .errors import DataError
from .workshop import SAMPLE, short_name

log = logging.getLogger(__name__)


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def workspace_status(name: str) -> dict[str, Any]:
    """What a workspace holds, for the facilitator's table."""
    from .eval_runs import list_eval_runs
    from .history import list_runs
    from .index import open_index
    from .jobs import ACTIVE, all_jobs
    from .training import list_adapters

    folder = paths.workspace_dir(name, create=False)
    docs = open_index(name).documents() if folder.exists() else []
    evals = list_eval_runs(name) if folder.exists() else []
    files = [f for f in folder.rglob("*") if f.is_file()] if folder.exists() else []
    jobs = [j for j in all_jobs(name) if j.status in ACTIVE]
    return {
        "workspace": name, "label": short_name(name), "documents": len(docs), "adapters": len(list_adapters(name)) if folder.exists() else 0,
        "questions": len(list_runs(name)) if folder.exists() else 0,
        "evaluations": len(evals), "finished_evaluations": sum(e.status == "done" for e in evals),
        "jobs": ", ".join(f"{j.kind} ({j.status})" for j in jobs) or "none",
        "last_activity": max((f.stat().st_mtime for f in files), default=None),
        "size_mb": round(_size_mb(folder), 1) if folder.exists() else 0.0,
    }


def leaderboard() -> list[dict[str, Any]]:
    """One row per workspace and approach, from each workspace's latest finished evaluation run."""
    from .decision_store import latest_run
    from .eval_summary import summarize
    from .pricing import pricing_for
    from .strategies import LABELS

    rows = []
    for name in paths.list_workspaces(existing=True):
        run = latest_run(name)
        if run is None:
            continue
        summary = summarize(run, pricing_for(name))
        for mode, s in summary.items():
            rows.append({"workspace": short_name(name), "approach": LABELS.get(mode, mode), "correct": s.get("correct_answerable"),
                         "f1": s.get("f1"), "format_ok": s.get("format_ok"), "latency_p50_s": s.get("latency_p50_s"),
                         "cost_per_1k_usd": s.get("cost_per_1k_usd"), "questions": run.done, "run": run.id})
    return sorted(rows, key=lambda r: (-(r["correct"] or 0), r["latency_p50_s"] or 0))


def _busy(name: str) -> None:
    from .jobs import ACTIVE, all_jobs

    jobs = [j for j in all_jobs(name) if j.status in ACTIVE]
    if jobs:
        raise DataError(f"Workspace {name!r} has {len(jobs)} job(s) queued or running ({jobs[0].label}); "
                        "cancel them first.")


def reset_workspace(name: str) -> None:
    """Empty a workspace (index, adapters, runs, settings); the name stays."""
    from .index import close_workspace

    _busy(name)
    folder = paths.workspace_dir(name, create=False)
    close_workspace(name)
    trash = _to_trash(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _empty_trash(trash)
    log.info("workspace %s reset", name)


def delete_workspace(name: str) -> None:
    from .index import close_workspace

    _busy(name)
    folder = paths.workspace_dir(name, create=False)
    close_workspace(name)
    _empty_trash(_to_trash(folder))
    log.info("workspace %s deleted", name)


def _to_trash(folder: Path) -> Path | None:
    """Move a workspace folder out of sight in one atomic rename: from here on it is either whole or gone,
    never half-deleted under its own name (a crash during the removal leaves only a hidden folder)."""
    if not folder.exists():
        return None
    trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}-{secrets.token_hex(3)}")
    folder.rename(trash)
    return trash


def _empty_trash(trash: Path | None) -> None:
    """Remove a trashed folder, and any left by an earlier interrupted removal."""
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    for left in trash.parent.glob(".trash-*") if trash is not None else ():
        shutil.rmtree(left, ignore_errors=True)


#: What "export all results" holds: the records, not the index or the adapter weights.
_EXPORTED = ("history", "evaluations", "jobs")
_EXPORTED_FILES = ("prices.json", "projection.json", "decision.json")


def export_all() -> bytes:
    """A zip of every workspace's results (compare history, evaluation runs, job records, cost and
    decision inputs, adapter records) plus the leaderboard as CSV and JSON."""
    from .store import csv_bytes

    buffer = io.BytesIO()
    shown: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in paths.list_workspaces(existing=True):
            folder = paths.workspace_dir(name, create=False)
            if not folder.exists():
                continue
            # A private workspace's full name is its link's secret: the zip names it as the leaderboard does,
            # in its folder names and inside its records (job records and adapter paths carry the name).
            short = short_name(name, "")
            while short in shown:
                short += "_"
            shown.add(short)

            def put(f: Path, arcname: str) -> None:
                zf.writestr(f"{short}/{arcname}", f.read_bytes().replace(name.encode(), short.encode()))

            for sub in _EXPORTED:
                for f in sorted((folder / sub).glob("*.json")) if (folder / sub).is_dir() else []:
                    put(f, f"{sub}/{f.name}")
            for fname in _EXPORTED_FILES:
                if (folder / fname).exists():
                    put(folder / fname, fname)
            for meta in sorted((folder / "adapters").glob("*/workbench-adapter.json")):
                put(meta, f"adapters/{meta.parent.name}.json")
        rows = leaderboard()
        zf.writestr("leaderboard.json", json.dumps(rows, indent=1))
        zf.writestr("leaderboard.csv", csv_bytes(rows, None if rows else ["workspace"]))
    return buffer.getvalue()


# -- the shared sample workspace ------------------------------------------------------------------------------
_sample_lock = threading.Lock()


def sample_folder() -> Path:
    """The read-only sample workspace: under WORKBENCH_HOME/shared, outside the workspaces folder."""
    return paths.home() / "shared" / SAMPLE


def ensure_sample(progress: Any = None) -> Path:
    """Build the sample workspace once per data folder (the sample documents indexed with the default
    settings); later calls return at once."""
    from .documents import parse_uploads
    from .index import close_folder, open_index_at
    from .samples import sample_documents

    folder = sample_folder()
    with _sample_lock:
        if (folder / ".complete").exists():
            return folder
        # A folder of its own for each attempt: an index handle kept open from a failed or interrupted
        # attempt must never meet a new build at the same path (its database would be read-only there).
        work = folder.with_name(f".{SAMPLE}-building-{os.getpid()}-{secrets.token_hex(3)}")
        work.mkdir(parents=True)
        try:
            index = open_index_at(work / "index")
            documents, _ = parse_uploads(sample_documents())
            index.add_documents(documents, **({"progress": progress} if progress else {}))
            close_folder(work / "index")
            (work / ".complete").write_text(str(time.time()))
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
        except BaseException:
            close_folder(work / "index")
            shutil.rmtree(work, ignore_errors=True)
            raise
    return folder


def clone_sample(target: str, progress: Any = None) -> None:
    """Copy the sample workspace into ``target`` (a new or empty workspace; nothing is overwritten)."""
    from .index import close_workspace

    source = ensure_sample(progress)
    folder = paths.workspace_dir(target, create=False)
    if folder.exists() and any(p for p in folder.iterdir() if p.name != "jobs"):
        raise DataError(f"Expected an empty workspace to copy the sample into; {target!r} already holds work. "
                        "Create a new workspace first (nothing was changed).")
    close_workspace(target)
    tmp = folder.with_name(f".{target}-clone-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".complete"))
    if not (tmp / "training_pairs.jsonl").exists():  # the sample's pairs: Prompted and the format check use them
        from . import samples
        from .pairs import read_pairs, workspace_pairs_jsonl

        data = (samples.sample_dir() / "training_pairs.jsonl").read_bytes()
        (tmp / "training_pairs.jsonl").write_text(workspace_pairs_jsonl(read_pairs("training_pairs.jsonl", data)[0]),
                                                  encoding="utf-8")
    if folder.exists():
        for item in folder.iterdir():  # only a jobs/ folder: keep it
            shutil.move(str(item), tmp / item.name)
        folder.rmdir()
    tmp.rename(folder)
    log.info("sample workspace cloned into %s", target)


# -- memory ---------------------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_report(max_age_s: float = 0.0) -> dict[str, Any]:
    """This server process: resident memory now and at its peak, every model it holds (the heap count
    of model copies may be up to ``max_age_s`` old; see ``models.live_model_copies``), and the most
    distinct adapters decoded in one batch so far."""
    import resource

    from .models import live_model_copies, loaded_model_details, loaded_model_objects

    rss = _status_kb("VmRSS")
    peak = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    copies = live_model_copies(max_age_s)
    mixed = max((getattr(m, "most_adapters_in_batch", 0) for m in loaded_model_objects()), default=0)
    return {"rss_mb": round(rss / 1024, 1) if rss else None, "peak_rss_mb": round(peak / 1024, 1) if peak else None,
            "models": loaded_model_details(), "copies": copies, "model_copies": max(copies.values(), default=0),
            "adapters_in_batch": mixed}
