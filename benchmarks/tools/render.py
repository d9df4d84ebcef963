"""Does a tool's HTML render in headless Chromium, how long does it take, and what does it show?

The page is opened from disk (or, for a tool that serves its view, from its server on 127.0.0.1)
with the network as it is here (PyPI only): a visualisation that
loads its JavaScript from a CDN fails, which is what a user without internet access sees.
"Renders" means: the load event came within the budget, no script error, no console error, no
failed request, the page shows something (text, SVG or canvas), and its screenshot could be taken,
all within the budget. The time is until the load event; the screenshot is taken once the network
is idle and drawing has had 2 s. A view that opens only on a click (LIT's Attention module starts
collapsed) names the element a user clicks (a CSS selector; Playwright's selectors reach into
shadow roots): it is clicked after the load, the requests the click starts (LIT fetches the heads
only then) are waited for within the budget, and the time reported runs until they have finished;
then drawing gets its 2 s. Every error is kept verbatim.

Each page gets its own Chromium in a child process that is killed at the budget: a page that keeps
the (software) GPU busy can otherwise hang a screenshot far past any Playwright timeout.

    python -m benchmarks.tools.render PAGE.html|http://127.0.0.1:PORT/... SHOT.png BUDGET_S ['["CSS selector", ...]']
    # prints one JSON line
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from attnlens.runtime import CHROMIUM

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1100, "height": 720}
IDLE_MS = 5000  # after the load event, wait at most this long for the network to go idle
DRAW_MS = 2000  # then let asynchronous drawing (WebGL, React) finish before the screenshot
START_S = 10  # Chromium's own start-up, on top of the page's budget
# visible text, SVG or canvas in the page or in any web component's shadow root (LIT draws in them)
SHOWS_SOMETHING = """() => {
  if (!document.body) return false;
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  }
  return roots.some((root) => !!root.querySelector('svg, canvas') || [...root.children].some((el) =>
    el instanceof HTMLElement && !['SCRIPT', 'STYLE'].includes(el.tagName) && el.innerText.trim().length > 0));
}"""


def _target(page: str | Path) -> str:
    """A served view's URL as it is; a file as a file:// URI."""
    return str(page) if str(page).startswith(("http://", "https://")) else Path(page).resolve().as_uri()


CLICK_MS = 500  # after a click, the page's own requests start within this

def _render_here(html: str | Path, screenshot: Path, budget_s: float, clicks=()) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and errors.append(f"console error: {msg.text[:300]}"))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} ({req.failure})"))
        open_requests = set()  # what the page still waits for (a click's fetches included)
        page.on("request", lambda req: open_requests.add(req))
        page.on("requestfinished", lambda req: open_requests.discard(req))
        page.on("requestfailed", lambda req: open_requests.discard(req))
        started = time.perf_counter()

        def left_ms() -> float:  # the budget covers it all
            return max(1000, (budget_s - (time.perf_counter() - started)) * 1000)

        try:
            page.goto(_target(html), wait_until="load", timeout=budget_s * 1000)
            seconds = time.perf_counter() - started
            try:
                page.wait_for_load_state("networkidle", timeout=IDLE_MS)
            except PlaywrightError:
                errors.append(f"network not idle {IDLE_MS / 1000:.0f} s after the load event")
            for selector in clicks:
                try:
                    page.click(selector, timeout=left_ms())
                except PlaywrightError as exc:
                    errors.append(f"could not click {selector!r}: {str(exc).splitlines()[0]}")
                    break
                page.wait_for_timeout(CLICK_MS)
                while open_requests and time.perf_counter() - started < budget_s:
                    page.wait_for_timeout(100)
                if open_requests:
                    errors.append(f"{len(open_requests)} request(s) still open {budget_s:g} s after the page was opened")
                seconds = time.perf_counter() - started
            page.wait_for_timeout(DRAW_MS)
            if not page.evaluate(SHOWS_SOMETHING):
                errors.append("the page shows nothing (no text, SVG or canvas)")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), timeout=left_ms())
        except PlaywrightError as exc:
            return {"renders": False, "render_s": None, "render_error": "; ".join([str(exc).splitlines()[0], *errors])}
        finally:
            browser.close()
    return {"renders": not errors, "render_s": round(seconds, 2), "render_error": "; ".join(errors) or None}


def render(html: str | Path, screenshot: Path, budget_s: float, clicks=()) -> dict:
    """Open `html` (a file, or a served view's URL) in a fresh headless Chromium (child process,
    killed at the budget), click `clicks` (CSS selectors) in order, and screenshot it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnlens.benchmarks.tools.render", str(html), str(screenshot), str(budget_s),
         json.dumps(list(clicks))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=budget_s + START_S)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.communicate()
        return {"renders": False, "render_s": None, "render_error": f"Chromium still busy after {budget_s:g} s: stopped"}
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"renders": False, "render_s": None, "render_error": f"the Chromium driver failed: {last}"}


if __name__ == "__main__":
    clicks = json.loads(sys.argv[4]) if len(sys.argv) > 4 else []
    print(json.dumps(_render_here(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), clicks)))
