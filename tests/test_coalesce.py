"""The coalescer: concurrent calls with the same settings run as one batch, each caller gets its
own rows back (and its own done() calls), different settings never mix, and a failure reaches
every caller of the batch."""

import threading
import time


from workbench.config import GenerationConfig
from workbench.generation.coalesce import Coalescer


class Recorder:
    def __init__(self, fail: bool = False):
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.fail = fail

    def __call__(self, requests, config, emits, done):
        self.batches.append(list(requests))
        if len(self.batches) == 1:
            self.gate.wait(5)  # hold the first batch so that the others queue up behind it
        if self.fail:
            raise RuntimeError("model broke")
        for j, r in enumerate(requests):
            emits[j](f"<{r}>")
            done(j)
        return [f"out:{r}@{config.max_new_tokens}" for r in requests]


def _call(co, requests, config, out, key):
    seen = []
    done = []
    try:
        out[key] = (co.run(requests, config, [seen.append] * len(requests), done.append), seen, done)
    except Exception as exc:  # noqa: BLE001
        out[key] = exc


def test_waiting_calls_with_the_same_config_are_merged():
    rec = Recorder()
    co = Coalescer(rec)
    a, b = GenerationConfig(max_new_tokens=8), GenerationConfig(max_new_tokens=9)
    out: dict = {}
    first = threading.Thread(target=_call, args=(co, ["q0"], a, out, 0))
    first.start()
    time.sleep(0.2)
    others = [threading.Thread(target=_call, args=(co, [f"q{i}", f"q{i}b"], a, out, i)) for i in (1, 2)]
    others.append(threading.Thread(target=_call, args=(co, ["z"], b, out, 3)))
    for t in others:
        t.start()
    time.sleep(0.3)
    rec.gate.set()
    for t in [first, *others]:
        t.join(5)
    assert rec.batches[0] == ["q0"]
    assert sorted(rec.batches[1]) == ["q1", "q1b", "q2", "q2b"]  # merged: same config
    assert rec.batches[2] == ["z"]  # a different config is never mixed in
    result, seen, done = out[1]
    assert result == ["out:q1@8", "out:q1b@8"] and seen == ["<q1>", "<q1b>"] and done == [0, 1]
    assert out[3][0] == ["out:z@9"]
    assert co.merged_calls == 2 and co.largest_batch == 4


def test_max_rows_caps_a_merged_batch():
    rec = Recorder()
    co = Coalescer(rec, max_rows=3)
    cfg = GenerationConfig()
    out: dict = {}
    threads = [threading.Thread(target=_call, args=(co, [f"q{i}"], cfg, out, i)) for i in range(7)]
    threads[0].start()
    time.sleep(0.2)
    for t in threads[1:]:
        t.start()
    time.sleep(0.3)
    rec.gate.set()
    for t in threads:
        t.join(5)
    assert max(len(b) for b in rec.batches) <= 3 and sum(len(b) for b in rec.batches) == 7
    assert all(out[i][0] == [f"out:q{i}@160"] for i in range(7))


def test_a_failure_reaches_every_caller_in_the_batch():
    rec = Recorder(fail=True)
    rec.gate.set()
    co = Coalescer(rec)
    out: dict = {}
    _call(co, ["q"], GenerationConfig(), out, 0)
    assert isinstance(out[0], RuntimeError)
    # The coalescer is free again afterwards.
    rec.fail = False
    _call(co, ["r"], GenerationConfig(), out, 1)
    assert out[1][0] == ["out:r@160"]


def test_one_caller_alone_runs_directly():
    rec = Recorder()
    rec.gate.set()
    co = Coalescer(rec)
    assert co.run(["solo"], GenerationConfig(), [lambda p: None], lambda j: None) == ["out:solo@160"]
    assert co.merged_calls == 0




def test_each_caller_gets_its_pieces_in_its_own_thread_and_leaving_stops_only_its_rows():
    """The batch runs in one caller's thread; every other caller's pieces and done() calls are made in
    that caller's own thread. A caller whose callback raises is cancelled alone."""
    gate = threading.Event()
    cancelled_rows = []

    def execute(requests, config, emits, done):
        if requests == ["first"]:
            gate.wait(5)
        out = []
        for step in range(3):
            for j, r in enumerate(requests):
                try:
                    emits[j](f"{r}.{step}")
                except Exception as exc:  # noqa: BLE001 - like the decode loop: the row stops, others go on
                    cancelled_rows.append(r)
                    out.append(exc)
        for j, _ in enumerate(requests):
            done(j)
        return [f"out:{r}" for r in requests]

    co = Coalescer(execute)
    cfg = GenerationConfig()
    out, threads_seen = {}, {}

    def call(key, leave=False):
        me = threading.get_ident()

        def emit(piece):
            threads_seen.setdefault(key, set()).add(threading.get_ident() == me)
            if leave:
                raise RuntimeError("page closed")

        try:
            out[key] = co.run([key], cfg, [emit], lambda i: threads_seen.setdefault(key, set()).add(
                threading.get_ident() == me))
        except RuntimeError as exc:
            out[key] = exc

    first = threading.Thread(target=call, args=("first",))
    first.start()
    time.sleep(0.2)
    others = [threading.Thread(target=call, args=(k, k == "gone")) for k in ("a", "gone", "b")]
    for t in others:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in [first, *others]:
        t.join(5)
    assert all(seen == {True} for seen in threads_seen.values())  # never drawn from another thread
    assert out["a"] == ["out:a"] and out["b"] == ["out:b"] and out["first"] == ["out:first"]
    assert isinstance(out["gone"], RuntimeError) and not {"a", "b", "first"} & set(cancelled_rows)
