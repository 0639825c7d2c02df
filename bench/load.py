"""Load: N people on one server at once, each in their own workspace, each asking the local model a
question from the Home page in a real (headless chromium) browser session.

Prints: sessions, errors, question time p50/p95 (from the click to the answer's timings on screen),
the server's peak resident memory, and how many copies of a model the server holds afterwards (read
from its Home page, which counts them on the heap).

    python bench/load.py [--sessions 20] [--json PATH]
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from _common import parser, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "What is a return window?"
LOAD_TIMEOUT_MS = 240_000
IDLE_JS = """() => { const w = document.querySelector('[data-testid="stStatusWidget"]');
                    return !w || !/Running|Connecting/i.test(w.innerText); }"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _idle(page, timeout: float = 600_000) -> None:
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    await page.wait_for_timeout(500)
    await page.wait_for_function(IDLE_JS, timeout=timeout)


async def _session(browser, url: str, n: int, ready: list, start: asyncio.Event, timeout_s: float) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    # Twenty pages opening at once on a small server (with the twenty browsers on it too) take a while
    # to draw: a page counts as failed only when it has not drawn in LOAD_TIMEOUT_MS.
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = await context.new_page()
    out = {"session": n, "error": None, "seconds": None}
    try:
        await page.goto(f"{url}/?workspace=load-{n:02d}", timeout=LOAD_TIMEOUT_MS)
        question = page.get_by_label("Question", exact=True)
        await question.wait_for(state="visible")
        await _idle(page)
        await question.fill(QUESTION)
        ready.append(n)
        await start.wait()  # everyone clicks at the same moment
        t0 = time.perf_counter()
        await page.get_by_role("button", name="Ask", exact=True).click()
        await page.get_by_text("Time to first token").wait_for(timeout=timeout_s * 1000)
        out["seconds"] = time.perf_counter() - t0
        await _idle(page)
        if await page.locator('[data-testid="stException"]').count():
            out["error"] = "exception shown"
        elif await page.locator('[data-testid="stAlertContentError"]').count():
            out["error"] = await page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    except Exception as exc:  # a timeout or a crash is an error of this session
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        await context.close()
    return out


async def _model_copies(browser, url: str) -> int | None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = await context.new_page()
    try:
        await page.goto(f"{url}/?workspace=load-report")
        await _idle(page)
        await page.get_by_text("Memory on this server").click()
        await _idle(page)
        metric = page.get_by_test_id("stMetric").filter(has_text="Copies of a model in memory")
        text = await metric.get_by_test_id("stMetricValue").inner_text()
        return int(re.sub(r"\D", "", text) or -1)
    finally:
        await context.close()


async def _run(url: str, sessions: int, timeout_s: float) -> tuple[list[dict], int | None]:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        start, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(_session(browser, url, n, ready, start, timeout_s)) for n in range(sessions)]
        deadline = time.time() + LOAD_TIMEOUT_MS / 1000 + 60  # every session loads its page first; then all ask at once
        while len(ready) + sum(t.done() for t in tasks) < sessions and time.time() < deadline:
            await asyncio.sleep(0.5)
        start.set()
        results = await asyncio.gather(*tasks)
        copies = await _model_copies(browser, url)
        await browser.close()
    return results, copies


def run(sessions: int = 20, timeout_s: float = 600.0) -> dict[str, float]:
    """Start a server on a fresh data folder, run the sessions, return the figures."""
    from tests.browser.conftest import Server

    with tempfile.TemporaryDirectory(prefix="workbench-load-") as home:
        server = Server(Path(home))
        try:
            results, copies = asyncio.run(_run(server.url, sessions, timeout_s))
            peak = peak_rss_mb(server.proc.pid)
        finally:
            server.stop()
    times = sorted(r["seconds"] for r in results if r["seconds"] is not None)
    errors = [r for r in results if r["error"]]
    for r in errors:
        print(f"  session {r['session']}: {r['error']}", file=sys.stderr)

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(round(q * (len(times) - 1))))] if times else float("nan")

    return {"sessions": float(sessions), "errors": float(len(errors)), "question_p50_s": pct(0.5),
            "question_p95_s": pct(0.95), "peak_rss_mb": peak,
            "model_copies": float(copies if copies is not None else -1)}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=20)
    args = p.parse_args()
    figures = run(args.sessions)
    report(f"Load: {args.sessions} browser sessions asking at once (one server process)", [
        ("sessions", figures["sessions"], "concurrent browser sessions, one workspace each"),
        ("errors", figures["errors"], "sessions that saw an error or timed out"),
        ("question_p50_s", figures["question_p50_s"], "s from the click to the answer (median)"),
        ("question_p95_s", figures["question_p95_s"], "s, 95th percentile (answers queue for the one model)"),
        ("peak_rss_mb", figures["peak_rss_mb"], "MB, the server process's peak resident memory"),
        ("model_copies", figures["model_copies"], "most copies of one model on the server's heap afterwards"),
    ], args.json)


if __name__ == "__main__":
    main()
