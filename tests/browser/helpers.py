"""Helpers for driving Streamlit pages in Playwright."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS


def wait_idle(page, timeout: float = 120_000) -> None:
    """Wait until the Streamlit script has finished running (the status widget shows no 'Running').

    A rerun triggered just before may not have started yet, so first give it a moment to show up."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    try:
        page.wait_for_function(
            """() => { const w = document.querySelector('[data-testid="stStatusWidget"]');
                       return w && /Running/i.test(w.innerText); }""", timeout=700)
    except Exception:  # no run started: already idle
        pass
    page.wait_for_function(
        """() => {
            const w = document.querySelector('[data-testid="stStatusWidget"]');
            return !w || !/Running|Connecting/i.test(w.innerText);
        }""",
        timeout=timeout,
    )
    page.wait_for_timeout(300)


def workspace_in_link(page, other_than: str = "", timeout: float = 60_000) -> str:
    """The workspace named in the page's link, once the app has put one there other than ``other_than``:
    the app writes it after its first run, which may end a moment after the page looks idle."""
    page.wait_for_function(
        """(old) => { const m = new URLSearchParams(location.search).get("workspace");
                      return m && m !== old; }""",
        arg=other_than, timeout=timeout)
    return page.evaluate('() => new URLSearchParams(location.search).get("workspace")')


def assert_no_errors(page) -> None:
    """No exception box, no error alert and no Python traceback text anywhere on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0, "an exception is shown"
    text = page.locator('[data-testid="stApp"]').inner_text()
    assert "Traceback (most recent call last)" not in text
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"error shown: {errors.first.inner_text() if errors.count() else ''}"


def shot(page, name: str) -> None:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def choose(page, label: str, value: str) -> None:
    """Pick ``value`` in the Streamlit selectbox labelled ``label`` (type to filter, Enter to pick)."""
    box = page.get_by_label(label, exact=True)
    box.click()
    box.fill(value)
    page.keyboard.press("Enter")
    wait_idle(page)


def tall(page, name: str, height: int = 2400) -> None:
    """Screenshot with a tall viewport: Streamlit scrolls inside its own container, so a full-page
    screenshot at 800 px would miss what is below the fold."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(800)
    shot(page, name)
    page.set_viewport_size(size)


def upload(page, index: int, files: list, expect: str, attempts: int = 3) -> None:
    """Attach ``files`` to the ``index``-th file uploader and wait for the ``expect`` file chip; retry when a
    rerun replaced the uploader while the files were being attached."""
    for attempt in range(attempts):
        wait_idle(page)
        page.get_by_test_id("stFileUploaderDropzoneInput").nth(index).set_input_files([str(f) for f in files])
        chip = page.get_by_test_id("stFileChipName").filter(has_text=expect)
        try:
            chip.first.wait_for(timeout=10_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def truncated_labels(page) -> list[str]:
    """Texts the page cuts off with an ellipsis (an element narrower than its text, with
    ``text-overflow: ellipsis``), in the main area: labels a person cannot read in full."""
    return page.evaluate(
        """() => {
            const out = [];
            for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
                if (!el.childElementCount && el.innerText && el.scrollWidth > el.clientWidth + 1) {
                    const style = getComputedStyle(el);
                    if (style.textOverflow === 'ellipsis' && style.overflow !== 'visible') out.push(el.innerText);
                }
            }
            return out;
        }""")


def at_widths(page, name: str, widths: tuple[int, ...] = (1280, 1440), height: int = 2400) -> dict[int, list[str]]:
    """Screenshots at each width (tall viewport); returns width -> truncated labels seen there."""
    size = page.viewport_size
    found = {}
    for width in widths:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(800)
        shot(page, f"{name}-{width}")
        found[width] = truncated_labels(page)
    page.set_viewport_size(size)
    return found
