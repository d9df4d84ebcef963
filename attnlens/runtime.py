"""Process-wide settings in one place: telemetry off, quiet third-party logs, stdout kept clean,
a graceful end on SIGTERM, and the torch thread count.

Nothing here imports a heavy library: the settings are environment variables and logger levels,
read by each library when it is first imported (vLLM reads VLLM_LOGGING_LEVEL at import time, its
engine subprocess inherits the environment).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
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
