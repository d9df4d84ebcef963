"""Process-wide settings in one place: telemetry off, quiet third-party logs, stdout kept clean,
a graceful end on SIGTERM, and the torch thread count; and the plumbing of a local server in a
child process (a free port, waiting until it answers, stopping its process group).

Nothing here imports a heavy library: the settings are environment variables and logger levels,
read by each library when it is first imported (vLLM reads VLLM_LOGGING_LEVEL at import time, its
engine subprocess inherits the environment).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

# No telemetry, ever. Each library reads its variable on import (or on first use).
TELEMETRY_OFF = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "RAGAS_DO_NOT_TRACK": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
}
# The headless browser that prints PDFs, checks the tools' pages and drives the UI tests: Debian's
# chromium (never a browser Playwright downloads), or the one ATTNLENS_CHROMIUM names.
CHROMIUM = os.environ.get("ATTNLENS_CHROMIUM", "/usr/bin/chromium")
# Loggers of the libraries attnlens drives. Their INFO lines are for their developers, not for
# someone asking why a model answered: by default only warnings and errors reach the terminal.
THIRD_PARTY_LOGGERS = (
    "vllm", "transformers", "httpx", "httpcore", "gradio", "gradio_client", "urllib3", "asyncio", "langchain",
    "langgraph", "ragas", "outlines", "datasets", "huggingface_hub", "torch", "uvicorn", "ray",
)  # fmt: skip


def apply_defaults() -> None:
    """Telemetry off and tokenizers without their fork warning; values the user set win."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def configure_logging(verbose: bool = False) -> None:
    """Quiet third-party INFO logs and progress bars (verbose=True lets them through)."""
    level = logging.INFO if verbose else logging.WARNING
    # vLLM's warnings on a CPU (no Triton, eager mode, tcmalloc) are about its set-up, not the
    # user's question: quiet by default, all of them with --verbose.
    os.environ["VLLM_LOGGING_LEVEL"] = "INFO" if verbose else "ERROR"
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "INFO" if verbose else "ERROR")
    os.environ["TRANSFORMERS_VERBOSITY"] = "info" if verbose else "error"
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if "transformers" in sys.modules:  # already imported: its own verbosity API is what counts
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(level if verbose else logging.ERROR)
        if not verbose:
            hf_logging.disable_progress_bar()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Everything written to file descriptor 1 (a library's prints, an engine subprocess's logs)
    goes to stderr while this is active, so a command's stdout holds only its own result."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit in the main thread, so `finally` blocks and atexit handlers
    run and engines started by this process (vLLM's EngineCore and its workers) are shut down
    instead of being left behind as orphans."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001 - the signal API's signature
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def set_threads(threads: int | None) -> None:
    """torch's intra-op thread count (None: leave torch's default)."""
    if threads:
        import torch  # deferred: heavy, and only needed when a count is given

        torch.set_num_threads(threads)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(url: str, process: subprocess.Popen, timeout: float) -> str | None:
    """Poll `url` until it answers with success; None when it did, else why not: the process exited
    first, or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            return f"exited with code {process.returncode} before it was up"
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local server only
                return None
        except OSError:  # refused, not listening yet, or an HTTP error status (urllib's are OSErrors)
            pass
        if time.monotonic() > deadline:
            return f"did not come up within {timeout:.0f} s"
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to the process group of a child started with start_new_session=True (the server
    and whatever it started, e.g. a vLLM engine core), SIGKILL for what is left after `grace` s."""
    group = process.pid  # start_new_session=True: the group id is the child's pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        process.poll()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the child itself so it leaves the group
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        pass
