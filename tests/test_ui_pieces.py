"""Small pieces every page shares: the progress line of a background job, and how an answer is shown."""

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


def test_an_answer_shows_web_addresses_as_text_not_links():
    """A small model invents addresses: they are shown, not made clickable; HTML stays inert."""
    from workbench.ui.common import answer_markdown

    assert answer_markdown("See https://www.brindemolless.com/ for more.") == \
        "See `https://www.brindemolless.com/` for more."
    assert answer_markdown('Visit [our site](https://evil.example/x "t") now') == \
        "Visit our site (`https://evil.example/x`) now"
    assert answer_markdown("Go to www.example.com, then call.") == "Go to `www.example.com`, then call."
    assert answer_markdown("## Refund\n<b>45 days</b>") == "**Refund**  \n&lt;b&gt;45 days&lt;/b&gt;"


def test_outside_text_is_shown_as_text_addresses_included():
    """Names from uploads are escaped for Markdown, and bare web and e-mail addresses in them cannot become
    links (the renderer links "www.x.y" and "a@b.c" even when escaped): each dot, colon and @ is set apart by
    zero-width spaces, so the text looks the same."""
    from workbench.ui.common import md_escape

    shown = md_escape("see www.evil.example [x](http://evil.example) me@evil.example.md", 200)
    assert "www." not in shown and "://" not in shown and "@e" not in shown and "](" not in shown
    visible = shown.replace("\u200b", "").replace("\\", "")
    assert visible == "see www.evil.example [x](http://evil.example) me@evil.example.md"


def test_an_error_shows_the_values_it_quotes_as_typed():
    """A name typed into a form comes back in the error quoted: Markdown in it is shown, not applied, while the
    message's own `command` formatting stays."""
    from markdown_it import MarkdownIt

    from workbench.ui.common import quoted_inert

    message = ("Expected an adapter name of letters, digits, '.', '_' or '-', got 'quick_ra*x*'; the workspace's "
               "adapters are kept. Run `python -m workbench train`.")
    html = MarkdownIt().render(quoted_inert(message))
    assert "'quick_ra*x*'" in html and "<em>" not in html
    assert "<code>python -m workbench train</code>" in html and "the workspace's adapters" in html
