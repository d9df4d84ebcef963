"""The Gradio app, served for real and driven by a real headless Chromium and by gradio_client,
on the real subject model and the session's real vLLM engine."""

import json
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from attnlens.pipeline.study import summarise
from attnlens.runtime import CHROMIUM
from attnlens.ui.app import build_app, launch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "ui"
CONTRACT = {"model", "prompt", "answer", "tokens", "graph", "clusters", "scores", "timings_s"}
PROBE = "<img src=x onerror=alert(1)>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(vllm_backend, tmp_path_factory):
    demo = build_app(vllm_backend, data_dir=tmp_path_factory.mktemp("study"), max_new_tokens=8, max_llm_clusters=2)
    port = free_port()
    launch(demo, port=port, block=False)  # the default host
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", db=demo.study_db, host=demo.server_name)
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(server.url)
    page.wait_for_selector("#question textarea")
    yield page
    context.close()


def ask(page, text: str, replies: int, timeout: float = 180) -> None:
    """Type into the chat box, press Enter, and wait until the chat holds `replies` messages."""
    page.locator("#question textarea").fill(text)
    page.locator("#question textarea").press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll('#chat .al-msg').length >= {replies}", timeout=timeout * 1000
    )


def messages(page) -> list[str]:
    return page.locator("#chat .al-msg").all_inner_texts()


def wait_plot(page, selector: str) -> None:
    page.wait_for_selector(f"{selector} .js-plotly-plot", timeout=60_000)


@pytest.mark.browser
def test_chat_why_views_and_study(page, server):
    ask(page, "What is the capital of France?", 2)
    assert messages(page)[1].strip()  # the model's answer
    page.locator("#why").click()
    page.wait_for_selector("#chat .al-clusters li", timeout=180_000)
    lines = page.locator("#chat .al-clusters li")
    assert lines.count() >= 2
    first = lines.first.inner_text()
    assert "effect +" in first and "(random +" in first and "attention" in first  # its effect beside random word sets
    highlighted = page.locator("#chat .al-tok")
    assert highlighted.count() >= 2
    colours = {highlighted.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(highlighted.count())}
    assert len(colours) >= 2  # distinct colours per cluster
    wait_plot(page, "#heatmap")  # the view on screen is rendered after the explanation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "chat.png"), full_page=True)

    page.get_by_role("tab", name="Heads").click()
    page.locator('#head-grid [data-testid="cell-3-2"]').click()  # layer 3, head 1 (column 0 is the layer)
    wait_plot(page, "#head-pattern")
    assert "layer 3, head 1" in page.locator("#head-pattern").inner_text()
    page.get_by_role("tab", name="Graph").click()
    wait_plot(page, "#graph")
    page.screenshot(path=str(SCREENSHOTS / "graph.png"), full_page=True)
    page.get_by_role("tab", name="Sweep").click()
    wait_plot(page, "#sweep")

    for name, value in (("clarity", "4"), ("usefulness", "3"), ("trust", "2")):
        page.locator(f"#{name}").get_by_text(value, exact=True).click()
    page.locator("#chosen input").click()
    page.locator("[data-testid=dropdown-option]").first.click()
    page.locator("#comment textarea").fill("clear <b>enough</b>")
    page.locator("#rate").click()
    page.wait_for_function("() => document.querySelector('#study-note').innerText.includes('rating saved')")
    summary = summarise(server.db)
    assert summary["ratings"] == 1 and summary["clarity"] == {"mean": 4.0, "n": 1}
    assert summary["trust"]["mean"] == 2.0 and summary["time_on_task_s"]["mean"] > 0
    assert summary["chose_top_cluster"] == {"rate": 1.0, "n": 1}  # the first cluster offered is the top one
    assert page.dialogs == []


@pytest.mark.browser
def test_a_waiting_user_sees_their_place_in_the_queue(browser, server):
    """Two sessions: while one's explanation runs, the other's question waits, and its page says
    where it stands ("queue: 1/1") until the model is free; then it gets its answer."""
    contexts, pages = [], []
    for _ in range(2):
        contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
        pages.append(contexts[-1].new_page())
        pages[-1].goto(server.url)
        pages[-1].wait_for_selector("#question textarea")
    first, second = pages
    try:
        ask(first, "Name a large animal.", 2)
        first.locator("#why").click()  # several seconds of model work: the LLM writes rationales
        box = second.locator("#question textarea")  # asks at once, without waiting for the reply
        box.fill("What is 2 + 2?")
        box.press("Enter")
        second.wait_for_function("() => /queue: \\d+\\/\\d+/.test(document.body.innerText)", timeout=60_000)
        second.wait_for_function("() => document.querySelectorAll('#chat .al-msg').length >= 2", timeout=180_000)
        assert messages(second)[1].strip()
        first.wait_for_selector("#chat .al-clusters li", timeout=180_000)
    finally:
        for context in contexts:
            context.close()


@pytest.mark.browser
def test_long_prompt_payload_and_xss_probe(page, smollm):
    facts = (
        "The old harbour town of Linwick has a lighthouse, a fish market, a library and a small museum. "
        "Its ferry leaves at nine every morning and returns at six. "
    )
    prompt = f"{facts * 14}Question {PROBE}: when does the ferry leave?"
    n_tokens = len(smollm.tokenizer(prompt)["input_ids"])
    assert 480 <= n_tokens <= 560
    ask(page, prompt, 2)

    # Bytes the browser receives from here on: the explanation, its reply and the view on screen.
    cdp = page.context.new_cdp_session(page)
    received = []
    cdp.on("Network.dataReceived", lambda event: received.append(event["dataLength"]))
    cdp.send("Network.enable")
    ask(page, "why did you say this?", 4, timeout=300)  # typed, not the button
    page.wait_for_selector("#chat .al-clusters li")
    wait_plot(page, "#heatmap")
    page.wait_for_timeout(500)
    total = sum(received)
    print(f"explanation of a {n_tokens}-token prompt: {total / 1e3:.0f} kB sent to the browser")
    assert 0 < total <= 5_000_000

    # The probe is text, in the question and in the highlighted prompt, and never an element.
    assert PROBE in messages(page)[0]
    assert "onerror=alert(1)" in messages(page)[3]
    assert page.locator("img[onerror]").count() == 0 and page.locator("#chat img").count() == 0
    assert page.dialogs == []
    page.screenshot(path=str(SCREENSHOTS / "long-prompt.png"), full_page=True)


@pytest.mark.browser
def test_bad_prompts_get_a_message_and_the_app_keeps_working(page):
    page.locator("#why").click()
    page.wait_for_selector("#chat .al-error")
    assert "Ask a question first" in messages(page)[-1]
    ask(page, "   ", 4)
    assert "the prompt is empty" in messages(page)[-1]
    ask(page, "word " * 9000, 6)
    assert "reads at most 8192" in messages(page)[-1] and "Traceback" not in page.content()
    ask(page, "What is 2 + 2?", 8)
    assert page.locator("#chat .al-msg").last.get_attribute("class") == "al-msg"  # an answer, not an error
    assert messages(page)[-1].strip()


def test_binds_to_localhost_by_default(server):
    assert server.host == "127.0.0.1"


def test_four_concurrent_clients_each_get_their_explanation(server):
    from gradio_client import Client

    prompts = [
        "What is the capital of Japan?",
        "Name a colour of the sky.",
        "What is 3 + 4?",
        "Which animal says moo?",
    ]
    settings = {"threshold": 0.05, "resolution": 1.0, "source": "rollout"}  # the last client sets them all
    results: dict[int, dict | Exception] = {}

    def call(i: int) -> None:
        try:
            extra = settings if i == 3 else {}
            results[i] = Client(server.url, verbose=False).predict(prompts[i], api_name="/explain", **extra)
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for i, prompt in enumerate(prompts):
        data = results[i]
        assert isinstance(data, dict), data
        assert CONTRACT <= set(data) and data["prompt"] == prompt and data["answer"] and data["clusters"]
        json.dumps(data)
    graph = results[3]["graph"]
    assert (graph["threshold"], graph["resolution"], graph["source"]) == (0.05, 1.0, "rollout")
    assert results[0]["graph"]["source"] == "mean"


def test_api_reports_bad_input_in_one_line(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    with pytest.raises(Exception, match="the prompt is empty"):
        client.predict("  ", api_name="/explain")
    with pytest.raises(Exception, match="unknown attention source"):
        client.predict("Hi", api_name="/explain", source="bogus")
