"""Load: N people on one server at once, each in their own workspace, each asking the local model its
own question from the Home page in a real (headless chromium) browser session; half of them ask
through an adapter of their own.

Before the server starts, one adapter is really trained (a few steps on the sample pairs) and copied
into every other session's workspace: each copy is a separate adapter to the server, so those
sessions' questions need different adapters in one batch. While the answers stream, each page
records every text its answer box shows; a shown text that is not the start of that session's own
final answer is a piece of another session's answer (misrouted).

Prints: sessions, errors, misrouted, adapters_in_batch (the most distinct adapters the server decoded
in one batch, read from its Home page), question time p50/p95 (from the click to the answer's timings
on screen), the server's peak resident memory, and how many copies of a model the server holds
afterwards (read from its Home page, which counts them on the heap).

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

QUESTIONS = ["What is a return window?", "How long is a lamp's warranty?", "What is a restocking fee?",
             "Can I return a planter?", "How do I track my parcel?", "Do you ship abroad?",
             "What payment methods do you accept?", "How do I clean a ceramic pot?", "Is a gift card refundable?",
             "What does the premium plan include?", "How do I reset my password?", "Where is your warehouse?",
             "Can I change my delivery address?", "What is your phone number?", "Do you offer student discounts?",
             "How long does delivery take?", "Can I cancel an order?", "What is the price of the E-410 lamp?",
             "How do I report a damaged item?", "What are your opening hours?"]
ADAPTER = "own-adapter"
#: Every text the answer box shows, recorded in the page while the answer streams.
RECORD_JS = """() => { window.__shown = []; setInterval(() => {
    const box = document.querySelector('.st-key-quick_answer');
    const text = box ? box.innerText : '';
    if (text && window.__shown[window.__shown.length - 1] !== text) window.__shown.push(text); }, 25); }"""
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


def _letters(text: str) -> str:
    """Only the letters, lower case: Markdown's marks, list numbers (drawn by the browser once a list item
    is complete), spacing and the cursor mark do not count."""
    return re.sub(r"[^a-z]", "", text.lower())


def misrouted_pieces(shown: list[str], final: str, others: tuple[str, ...] = (), head: int = 40) -> int:
    """Texts shown in a session's answer box that are not its own answer: a text whose first ``head``
    letters are not the start of the session's own final answer, or that is the start of another
    session's answer and not of its own. (Only the start counts for the first test: Markdown still being
    written, a half-typed link say, is drawn differently until it is complete.)"""
    own = _letters(final)
    rivals = [_letters(o) for o in others if _letters(o) != own]
    count = 0
    for text in shown:
        letters = _letters(text)
        if own.startswith(letters):
            continue
        if not own.startswith(letters[:head]) or any(r.startswith(letters) for r in rivals):
            count += 1
    return count


async def _session(browser, url: str, n: int, ready: list, start: asyncio.Event, timeout_s: float,
                   with_adapter: bool, max_tokens: int) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    # Twenty pages opening at once on a small server (with the twenty browsers on it too) take a while
    # to draw: a page counts as failed only when it has not drawn in LOAD_TIMEOUT_MS.
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = await context.new_page()
    out = {"session": n, "error": None, "seconds": None, "misrouted": 0, "adapter": with_adapter}
    try:
        await page.goto(f"{url}/?workspace=load-{n:02d}", timeout=LOAD_TIMEOUT_MS)
        question = page.get_by_label("Question", exact=True)
        await question.wait_for(state="visible")
        await _idle(page)
        await question.fill(QUESTIONS[n % len(QUESTIONS)])
        if max_tokens != 96:  # the slider's default; 16 a step
            slider = page.get_by_test_id("stSlider").filter(has_text="Maximum answer length").get_by_role("slider")
            await slider.focus()
            for _ in range((96 - max_tokens) // 16):
                await page.keyboard.press("ArrowLeft")
            await _idle(page)
        if with_adapter:
            box = page.get_by_label("Answer with", exact=True)
            await box.click()
            await box.fill(ADAPTER)
            await page.keyboard.press("Enter")
            await _idle(page)
        await page.evaluate(RECORD_JS)
        ready.append(n)
        await start.wait()  # everyone clicks at the same moment
        t0 = time.perf_counter()
        await page.get_by_role("button", name="Ask", exact=True).click()
        await page.get_by_text("Time to first token").wait_for(timeout=timeout_s * 1000)
        out["seconds"] = time.perf_counter() - t0
        await _idle(page)
        final = await page.locator(".st-key-quick_answer").inner_text()
        out["shown"], out["final"] = await page.evaluate("() => window.__shown"), final
        if await page.locator('[data-testid="stException"]').count():
            out["error"] = "exception shown"
        elif await page.locator('[data-testid="stAlertContentError"]').count():
            out["error"] = await page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    except Exception as exc:  # a timeout or a crash is an error of this session
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        await context.close()
    return out


async def _server_figures(browser, url: str) -> tuple[int | None, int | None]:
    """(copies of a model, most adapters in one batch), from the server's Home page."""
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
        line = await page.get_by_text("the most adapters in one such batch so far").inner_text()
        mixed = re.search(r"so far: (\d+)", line)
        return int(re.sub(r"\D", "", text) or -1), int(mixed.group(1)) if mixed else None
    finally:
        await context.close()


async def _run(url: str, sessions: int, timeout_s: float, max_tokens: int
               ) -> tuple[list[dict], tuple[int | None, int | None]]:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        start, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(_session(browser, url, n, ready, start, timeout_s, n % 2 == 0, max_tokens))
                 for n in range(sessions)]
        deadline = time.time() + LOAD_TIMEOUT_MS / 1000 + 60  # every session loads its page first; then all ask at once
        while len(ready) + sum(t.done() for t in tasks) < sessions and time.time() < deadline:
            await asyncio.sleep(0.5)
        start.set()
        results = await asyncio.gather(*tasks)
        figures = await _server_figures(browser, url)
        await browser.close()
    return results, figures


def train_adapters(home: Path, sessions: int, steps: int = 4) -> float:
    """Train one small adapter for real (``steps`` optimisation steps on the sample pairs) in session 0's
    workspace and copy it into every other even-numbered session's workspace. Returns the training time."""
    import os
    import shutil

    os.environ["WORKBENCH_HOME"] = str(home)
    from workbench import samples
    from workbench.config import TrainConfig
    from workbench.pairs import read_pairs
    from workbench.training import adapters_dir, train_adapter

    path = samples.sample_dir() / "training_pairs.jsonl"
    pairs, _ = read_pairs(path.name, path.read_bytes())
    t0 = time.perf_counter()
    trained = train_adapter(pairs[:16], TrainConfig(rank=4, alpha=8, epochs=1.0, val_fraction=0.0),
                            workspace="load-00", name=ADAPTER, max_steps=steps)
    seconds = time.perf_counter() - t0
    for n in range(2, sessions, 2):
        shutil.copytree(trained.path,
                        adapters_dir(f"load-{n:02d}") / ADAPTER)
    return seconds


def run(sessions: int = 20, timeout_s: float = 600.0, max_tokens: int = 96, train_steps: int = 4) -> dict[str, float]:
    """Start a server on a fresh data folder, run the sessions (answers of at most ``max_tokens``, a multiple
    of 16 up to 96; the sessions' adapter trained for ``train_steps`` steps), return the figures."""
    from tests.browser.conftest import Server

    with tempfile.TemporaryDirectory(prefix="workbench-load-") as home:
        train_s = train_adapters(Path(home), sessions, train_steps)
        server = Server(Path(home))
        try:
            results, (copies, mixed) = asyncio.run(_run(server.url, sessions, timeout_s, max_tokens))
            peak = peak_rss_mb(server.proc.pid)
        finally:
            server.stop()
    finals = tuple(r.get("final", "") for r in results)
    for r in results:
        r["misrouted"] = misrouted_pieces(r.get("shown", []), r.get("final", ""), finals)
        if r["misrouted"]:
            wrong = [t for t in r["shown"] if misrouted_pieces([t], r["final"], finals)]
            r["misrouted_example"] = (wrong[0][:300], r["final"][:300])
    times = sorted(r["seconds"] for r in results if r["seconds"] is not None)
    errors = [r for r in results if r["error"]]
    for r in errors:
        print(f"  session {r['session']}: {r['error']}", file=sys.stderr)
    for r in results:
        if r.get("misrouted_example"):
            shown, final = r["misrouted_example"]
            print(f"  session {r['session']} showed {shown!r}; its own answer: {final!r}", file=sys.stderr)

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(round(q * (len(times) - 1))))] if times else float("nan")

    return {"sessions": float(sessions), "errors": float(len(errors)),
            "misrouted": float(sum(r["misrouted"] for r in results)),
            "adapters_in_batch": float(mixed if mixed is not None else -1),
            "sessions_with_adapter": float(sum(r["adapter"] for r in results)),
            "question_p50_s": pct(0.5), "question_p95_s": pct(0.95), "peak_rss_mb": peak,
            "model_copies": float(copies if copies is not None else -1), "adapter_train_s": train_s}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=20)
    args = p.parse_args()
    figures = run(args.sessions)
    report(f"Load: {args.sessions} browser sessions asking at once (one server process)", [
        ("sessions", figures["sessions"], "concurrent browser sessions, one workspace each"),
        ("errors", figures["errors"], "sessions that saw an error or timed out"),
        ("misrouted", figures["misrouted"], "texts shown in a session that were not its own answer"),
        ("adapters_in_batch", figures["adapters_in_batch"], "most distinct adapters decoded in one batch"),
        ("sessions_with_adapter", figures["sessions_with_adapter"], "sessions asking through their own adapter"),
        ("question_p50_s", figures["question_p50_s"], "s from the click to the answer (median)"),
        ("question_p95_s", figures["question_p95_s"], "s, 95th percentile (answers queue for the one model)"),
        ("peak_rss_mb", figures["peak_rss_mb"], "MB, the server process's peak resident memory"),
        ("model_copies", figures["model_copies"], "most copies of one model on the server's heap afterwards"),
        ("adapter_train_s", figures["adapter_train_s"], "s to train the sessions' adapter (before the server starts)"),
    ], args.json)


if __name__ == "__main__":
    main()
