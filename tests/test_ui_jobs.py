"""The progress line every page draws for a background job."""

from streamlit.testing.v1 import AppTest


def _line(status: str) -> AppTest:
    def page(status: str) -> None:
        from types import SimpleNamespace

        from workbench.progress import ProgressEvent
        from workbench.ui.jobs import progress_line

        last = ProgressEvent("evaluate", 6, 50, "Question 6 of 50", {"eta_s": 269.0})
        progress_line(SimpleNamespace(status=status, last=last))

    return AppTest.from_function(page, args=(status,)).run()


def test_a_running_job_shows_its_time_left_and_an_ended_one_does_not():
    running = _line("running")
    assert not running.exception
    assert "about 269 s left" in running.get("progress")[0].proto.text
    cancelled = _line("cancelled")
    text = cancelled.get("progress")[0].proto.text
    assert "s left" not in text and text == "Question 6 of 50 · cancelled here"
    assert "s left" not in _line("done").get("progress")[0].proto.text
