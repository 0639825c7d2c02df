"""Kill tests: a process killed in the middle of indexing or training leaves a workspace that opens,
keeps everything completed before, and reports the interrupted job as interrupted, never as done."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _start(script: str, home) -> subprocess.Popen:
    env = dict(os.environ, WORKBENCH_HOME=str(home), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(proc: subprocess.Popen, word: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if word in line:
            return
    proc.kill()
    raise AssertionError(f"never saw {word!r}:\n{''.join(seen)[-3000:]}")


def test_killed_while_indexing_the_index_opens_with_every_completed_document(workbench_home):
    # The child indexes 2 documents, then 10 more; it is killed after a document's chunks are written
    # but before the manifest records it: the worst moment.
    proc = _start("""
        import time
        from workbench import samples
        from workbench.documents import parse_uploads
        from workbench.index import KnowledgeIndex, open_index
        index = open_index("k")
        index.add_documents(parse_uploads(samples.sample_documents()[:2])[0])
        saves = {"n": 0}
        original = KnowledgeIndex._save_manifest
        def save(self):
            saves["n"] += 1
            if saves["n"] == 3:  # the third document of the big batch: chunks written, manifest not yet
                print("KILL ME", flush=True)
                time.sleep(600)
            original(self)
        KnowledgeIndex._save_manifest = save
        index.add_documents(parse_uploads(samples.sample_documents()[2:])[0])
    """, workbench_home)
    _wait_for(proc, "KILL ME")
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    from workbench import samples
    from workbench.index import close_all, open_index
    from workbench.retrieval import retrieve

    close_all()
    index = open_index("k")
    names = [d["name"] for d in index.documents()]
    expected = [n for n, _ in samples.sample_documents()[:4]]  # 2 before, 2 completed in the big batch
    assert sorted(names) == sorted(expected)
    assert index.last_repair["orphan_chunks_removed"] > 0  # the half-written document's chunks are gone
    assert index.count() == sum(d["chunks"] for d in index.documents())
    hits = retrieve(index, "How do I return a product?").hits
    assert hits and all(h.chunk.doc_name in names for h in hits)
    assert not index.needs_repair()
    close_all()


def test_killed_while_training_the_job_is_interrupted_and_nothing_half_saved_appears(workbench_home):
    proc = _start("""
        from workbench import samples
        from workbench.config import TrainConfig
        from workbench.jobs import get_runner
        from workbench.pairs import read_pairs
        from workbench.training import train_adapter
        pairs, _ = read_pairs("p.jsonl", (samples.sample_dir() / "training_pairs.jsonl").read_bytes())
        def progress(event):
            if event.stage == "train" and event.step >= 1:
                print("TRAINING", flush=True)
        job = get_runner().submit("train", "k", "Train",
                                  lambda sink, cancel: train_adapter(pairs, TrainConfig(epochs=3), workspace="k",
                                                                     name="never", progress=progress, cancel=cancel))
        import time
        time.sleep(600)
    """, workbench_home)
    _wait_for(proc, "TRAINING")
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    from workbench.jobs import job_history
    from workbench.training import list_adapters

    from workbench.training import adapters_dir

    (job,) = job_history("k")
    assert job["status"] == "interrupted" and "nothing it was writing was kept" in job["error"]
    assert list(adapters_dir("k").glob(".tmp-never-*"))  # the killed training's work folder is left behind ...
    assert list_adapters("k") == []  # ... the half-trained adapter never appears
    assert not list(adapters_dir("k").glob(".tmp-*"))  # ... and listing removed the leftover


def _index_in_a_process(home, workspace: str, folder) -> subprocess.Popen:
    env = dict(os.environ, WORKBENCH_HOME=str(home), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "workbench", "index", str(folder), "--workspace", workspace],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("repetition", range(2))
def test_two_processes_indexing_one_workspace_lose_nothing(workbench_home, tmp_path, repetition):
    # Each process adds five documents of its own to the same workspace at the same time (the app and the
    # CLI, or two CLI runs). Every document ends in the manifest, and Chroma holds exactly their chunks.
    from workbench.index import close_all, open_index

    folders = []
    for who in ("a", "b"):
        folder = tmp_path / who
        folder.mkdir()
        for i in range(5):
            (folder / f"{who}-{i}.md").write_text(f"# Note {who}{i}\n\nDocument {who}-{i} says the code is "
                                                  f"{who.upper()}-{100 + i} and the answer is {i * 7} days.\n")
        folders.append(folder)
    procs = [_index_in_a_process(workbench_home, "shared", f) for f in folders]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    close_all()
    index = open_index("shared")
    names = {d["name"] for d in index.documents()}
    assert names == {f"{w}-{i}.md" for w in "ab" for i in range(5)}, (names, outputs)
    assert index.count() == sum(d["chunks"] for d in index.documents())
    close_all()
