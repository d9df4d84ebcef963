"""Softmax + per-row statistics for one block of query rows: the capture's inner loop.

`softmax_stats` turns masked, scaled scores into probabilities in place and returns, from the
same pass, what the capture keeps. Two backends with one contract: "fused" (a compiled C++
kernel, one pass over each row in cache; built on first use) and "torch" (plain PyTorch, the
reference and the fallback). backend="auto" (the default) is "fused" when it builds here and
"torch" otherwise (one warning says why). Tests compare them on every input shape the capture
produces.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from attnlens.extraction.models import cache_root


@dataclass
class BlockStats:
    """Statistics of one block of c query rows over kk keys, for H heads."""

    entropy: torch.Tensor  # Float[H c]   -sum_j p log p (nats)
    distance: torch.Tensor  # Float[H c]  sum_j p_ij |i - j|
    sink: torch.Tensor  # Float[H c]      p_i0 (0 when key 0 is outside the block's keys)
    prev: torch.Tensor  # Float[H c]      p_i,i-1 (0 when i-1 is outside the keys)
    topk_values: torch.Tensor  # Float[H c k]  descending
    topk_indices: torch.Tensor  # Long[H c k]  absolute key positions
    head_sum: torch.Tensor  # Float[c kk]  sum over heads of p, added into the accumulator passed (or zeros)
    head_max: torch.Tensor  # Float[c kk]  max over heads of p, maxed into the accumulator passed (or zeros)


def _accumulators(scores: torch.Tensor, head_sum, head_max) -> tuple[torch.Tensor, torch.Tensor]:
    c, kk = scores.shape[1:]
    return (
        scores.new_zeros(c, kk) if head_sum is None else head_sum,
        scores.new_zeros(c, kk) if head_max is None else head_max,
    )


def softmax_stats_torch(
    scores: torch.Tensor, row_positions: torch.Tensor, key_offset: int, k: int,
    head_sum: torch.Tensor | None = None, head_max: torch.Tensor | None = None,
) -> BlockStats:
    """Reference backend.

    scores: Float[H c kk], already scaled and masked (-inf where a key is not attended);
    overwritten with the probabilities. A row with no attended key becomes all zeros.
    row_positions: Long[c], the absolute position of each query row.
    key_offset: absolute position of key 0 of the block.
    head_sum, head_max: Float[c kk] accumulators (views into the capture's n x n arrays) that the
    sum and the max over heads are added / maxed into in place; None: fresh zeros.
    """
    head_sum, head_max = _accumulators(scores, head_sum, head_max)
    heads, c, kk = scores.shape
    row_max = scores.amax(-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    probs = scores.sub_(row_max).exp_()
    total = probs.sum(-1, keepdim=True)
    probs.div_(torch.where(total > 0, total, torch.ones_like(total)))

    keys = torch.arange(key_offset, key_offset + kk, device=scores.device)
    gaps = (row_positions[:, None] - keys[None, :]).abs().to(scores.dtype)  # [c kk]
    entropy = -torch.special.xlogy(probs, probs).sum(-1)
    distance = torch.einsum("hck,ck->hc", probs, gaps)
    sink = probs[..., 0] if key_offset == 0 else probs.new_zeros(heads, c)
    prev_local = row_positions - 1 - key_offset
    in_range = (prev_local >= 0) & (prev_local < kk)
    prev = probs.gather(-1, prev_local.clamp(0, kk - 1)[None, :, None].expand(heads, c, 1)).squeeze(-1)
    prev = prev * in_range[None, :]
    k_eff = min(k, kk)
    topk_values, topk_local = probs.topk(k_eff, dim=-1)
    if k_eff < k:  # fewer keys than k: pad with zero weights pointing at key_offset
        pad = k - k_eff
        topk_values = torch.cat([topk_values, topk_values.new_zeros(heads, c, pad)], -1)
        topk_local = torch.cat([topk_local, topk_local.new_zeros(heads, c, pad)], -1)
    return BlockStats(
        entropy=entropy,
        distance=distance,
        sink=sink,
        prev=prev,
        topk_values=topk_values,
        topk_indices=topk_local + key_offset,
        head_sum=head_sum.add_(probs.sum(0)),
        head_max=torch.maximum(head_max, probs.amax(0), out=head_max),
    )


# ---------------------------------------------------------------------------------------------
# "fused": extraction/fused_stats.cpp, built with torch.utils.cpp_extension on first use into
# <cache>/build/fused_stats-<hash>, then registered as torch.ops.attnlens_fused_stats.*.

FUSED_SOURCE = Path(__file__).with_name("fused_stats.cpp")
FUSED_NAME = "attnlens_fused_stats"
DISABLE_ENV = "ATTNLENS_DISABLE_FUSED"  # set to 1: never build/use the fused kernel

_lock = threading.Lock()
_loaded: dict[str, tuple[object | None, str]] = {}  # extension name -> (torch.ops namespace | None, reason)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def fused_build_flags(simd: bool = True) -> tuple[list[str], list[str]]:
    """(extra_cflags, extra_ldflags) for this machine.

    -O3, plus -mavx2 -mfma only when this CPU has both (never -march=native: the build cache
    may be shared with a different CPU, which is why the flags are part of the cache key), and
    never -ffast-math (gcc then links crtfastmath.o, which flushes denormals for the whole
    process at load time). -fopenmp only when torch's intra-op pool is OpenMP: at::parallel_for
    is a header template that is serial without it; the library then needs libgomp.so.1, which
    resolves to the copy torch has already loaded (one OpenMP runtime, one thread pool).
    """
    cflags = ["-O3"]
    if simd and {"avx2", "fma"} <= _cpu_flags():
        cflags += ["-mavx2", "-mfma"]
    ldflags: list[str] = []
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():
        cflags.append("-fopenmp")
        ldflags.append("-fopenmp")
    return cflags, ldflags



def _build(name: str, simd: bool):
    """Compile (or reuse) the extension and load it; returns its torch.ops namespace."""
    from torch.utils import cpp_extension

    cflags, ldflags = fused_build_flags(simd)
    key = hashlib.sha256()
    for part in (FUSED_SOURCE.read_bytes(), torch.__version__.encode(), name.encode(), " ".join(cflags + ldflags).encode()):
        key.update(part)
        key.update(b"\0")
    build_dir = cache_root() / "build" / f"fused_stats-{key.hexdigest()[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    old_path = os.environ.get("PATH", "")
    # ninja is installed in the venv, whose bin folder need not be on PATH
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + old_path
    try:
        cpp_extension.load(
            name=name,
            sources=[str(FUSED_SOURCE)],
            build_directory=str(build_dir),
            extra_cflags=cflags,
            extra_ldflags=ldflags,
            is_python_module=False,  # registers torch.ops.<name>.*; no pybind11, faster to compile
            verbose=False,
        )
    finally:
        os.environ["PATH"] = old_path
    return getattr(torch.ops, name)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}"[:300]


def _load(name: str = FUSED_NAME, simd: bool = True) -> tuple[object | None, str]:
    with _lock:
        if name not in _loaded:
            if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
                _loaded[name] = (None, f"disabled by {DISABLE_ENV}")
            else:
                try:
                    _loaded[name] = (_build(name, simd), "")
                except Exception as exc:  # a compiler, ninja or cache problem: fall back, never crash
                    reason = _one_line(exc)
                    _loaded[name] = (None, reason)
                    warnings.warn(
                        f"attnlens: the fused softmax kernel could not be built ({reason}); using the torch backend",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return _loaded[name]


def fused_available() -> tuple[bool, str]:
    """(True, "") when the fused kernel is built and loaded (building it on first call), else (False, reason)."""
    ops, reason = _load()
    return ops is not None, reason


def fused_ops(name: str = FUSED_NAME, simd: bool = True):
    """The loaded extension's torch.ops namespace (softmax_stats, exp, simd); RuntimeError when unavailable."""
    ops, reason = _load(name, simd)
    if ops is None:
        raise RuntimeError(f"the fused backend is unavailable: {reason}")
    return ops


def _fused_handles(scores: torch.Tensor, head_sum: torch.Tensor, head_max: torch.Tensor) -> bool:
    return (
        scores.device.type == "cpu"
        and scores.dtype == torch.float32
        and scores.dim() == 3
        and scores.shape[-1] > 0
        and scores.is_contiguous()
        and all(
            a.device.type == "cpu" and a.dtype == torch.float32 and (a.stride(-1) == 1 or a.shape[-1] == 1)
            for a in (head_sum, head_max)
        )
    )


def softmax_stats_fused(
    scores: torch.Tensor, row_positions: torch.Tensor, key_offset: int, k: int,
    head_sum: torch.Tensor | None = None, head_max: torch.Tensor | None = None, ops=None,
) -> BlockStats:
    """Compiled backend (same contract as softmax_stats_torch); `ops`: another build of the
    kernel (tests run the scalar one), else the default.

    Inputs the kernel does not handle (not CPU float32 contiguous [H c kk], e.g. CUDA tensors)
    go to the torch reference, so a capture that resolved to "fused" still runs anywhere.
    """
    ops = ops or fused_ops()
    head_sum, head_max = _accumulators(scores, head_sum, head_max)
    if not _fused_handles(scores, head_sum, head_max):
        return softmax_stats_torch(scores, row_positions, key_offset, k, head_sum, head_max)
    rows = row_positions.to(device="cpu", dtype=torch.long)
    return BlockStats(*ops.softmax_stats(scores, rows, int(key_offset), int(k), head_sum, head_max), head_sum, head_max)


BACKENDS: dict[str, Callable[..., BlockStats]] = {
    "torch": softmax_stats_torch,
    "fused": softmax_stats_fused,  # compiled lazily, on its first use
}


def resolve_backend(backend: str = "auto") -> str:
    """The backend a name stands for: "auto" is "fused" when it builds, else "torch"."""
    if backend == "auto":
        return "fused" if fused_available()[0] else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown softmax backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    return backend


def softmax_stats(
    scores: torch.Tensor, row_positions: torch.Tensor, key_offset: int, k: int, backend: str = "auto",
    head_sum: torch.Tensor | None = None, head_max: torch.Tensor | None = None,
) -> BlockStats:
    """Probabilities in place + statistics, the sum and max over heads added / maxed into `head_sum`
    / `head_max` when given. backend: "auto" (fused when it builds, else torch), "fused", "torch"."""
    return BACKENDS[resolve_backend(backend)](scores, row_positions, key_offset, k, head_sum, head_max)
