"""Eight people on one server: each in a browser session of their own asks a question at the same
moment. No session sees an error, and the server holds one copy of the model. (bench/load.py runs
the same with 20 sessions and prints the timings and memory; 8 keep the suite's time in bounds on
2 cores.)"""

import sys

from tests.conftest import ROOT


def test_eight_sessions_ask_at_once_without_errors_and_share_one_model():
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    figures = load.run(sessions=8, timeout_s=600)
    print(figures)
    assert figures["sessions"] == 8
    assert figures["errors"] == 0
    assert figures["model_copies"] == 1
    assert figures["question_p50_s"] > 0 and figures["question_p95_s"] >= figures["question_p50_s"]
