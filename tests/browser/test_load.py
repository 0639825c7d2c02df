"""Eight people on one server: each in a browser session of their own asks their own question at the
same moment, half of them through an adapter of their own. No session sees an error or a piece of
another's answer, the adapters are decoded together, and the server holds one copy of the model.
(bench/load.py runs the same with 20 sessions and prints the timings and memory; 8 keep the suite's
time in bounds on 2 cores.)"""

import sys

from tests.conftest import ROOT


def test_eight_sessions_ask_at_once_without_errors_and_share_one_model():
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    # Answers long enough to stream, short for the suite; the sessions' adapter trained for 2 steps.
    figures = load.run(sessions=8, timeout_s=600, max_tokens=48, train_steps=2)
    print(figures)
    assert figures["sessions"] == 8
    assert figures["errors"] == 0
    assert figures["misrouted"] == 0
    assert figures["sessions_with_adapter"] == 4 and figures["adapters_in_batch"] >= 2
    assert figures["model_copies"] == 1
    assert figures["question_p50_s"] > 0 and figures["question_p95_s"] >= figures["question_p50_s"]


def test_the_misrouting_check_counts_text_that_is_not_the_sessions_own():
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    own = ("Summary: **Returns** are accepted within 30 days.\n\nSteps:\n\nPack it, then write to "
           "[returns](https://example.com/returns) for a label.")
    other = "The warranty on a lamp lasts two years from the day of delivery."
    # A list number shows while its item is incomplete, then the browser draws it (not in the text);
    # a half-typed link shows its raw Markdown until it is complete.
    assert load.misrouted_pieces(["Summary: **Ret ▌", "Summary: Returns are ▌", "Summary: Returns are accepted "
                                  "within 30 days.\n\nSteps:\n\n1 ▌", "Summary: Returns are accepted within 30 "
                                  "days. Steps: Pack it, then write to [returns](https://exa ▌", own], own, (other,)) == 0
    # Another session's answer, from its start or once it is longer than the shared start.
    assert load.misrouted_pieces(["Summary: Returns", "The warranty lasts two ▌", own], own, (other,)) == 1
    assert load.misrouted_pieces(["The ▌"], own, (other,)) == 1
