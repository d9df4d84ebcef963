"""The fused softmax/statistics kernel (compiled for real) against the torch reference.

Every shape family the capture produces: 1-9 heads, 1-64 query rows, 1-2048 keys, k above and
below the number of keys, key blocks at offset 0 and later, causal triangles, random masks,
fully masked rows, -1e30 "masks", and scores whose exp underflows to denormals.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from attnlens.extraction import kernels
from attnlens.extraction.kernels import BlockStats, softmax_stats, softmax_stats_torch

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-6
STAT_FIELDS = ("entropy", "distance", "sink", "prev", "topk_values", "topk_indices", "head_sum", "head_max")
MASKS = ("dense", "causal", "random", "fully_masked", "huge_negative", "denormal")


@pytest.fixture(scope="module")
def fused_ops():
    ok, reason = kernels.fused_available()
    if reason.startswith("disabled by"):
        pytest.skip(reason)
    assert ok, f"the fused kernel did not build: {reason}"
    return kernels.fused_ops()


@pytest.fixture(scope="module")
def scalar_ops():
    """The same source built without AVX2: the fallback a CPU without it compiles."""
    ops = kernels.fused_ops("attnlens_fused_stats_scalar", simd=False)
    assert ops.simd() == "scalar"
    return ops


def make_block(heads: int, c: int, kk: int, key_offset: int, mask: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores Float[H c kk] and row positions Long[c], as the capture would hand them over."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(heads, c, kk, generator=g) * 3.0
    rows = key_offset + max(kk - c, 0) + torch.arange(c)
    neg_inf = float("-inf")
    if mask == "causal":
        keys = key_offset + torch.arange(kk)
        scores.masked_fill_(keys[None, None, :] > rows[None, :, None], neg_inf)
    elif mask == "random":
        scores.masked_fill_(torch.rand(heads, c, kk, generator=g) < 0.4, neg_inf)
        scores[:, 0] = neg_inf  # a fully masked row in every head
    elif mask == "fully_masked":
        scores[0] = neg_inf  # a whole head
        scores[:, ::3] = neg_inf  # every third row of every head
        scores[-1, -1, 0] = 1.0  # one row with a single attended key
    elif mask == "huge_negative":
        scores.masked_fill_(torch.rand(heads, c, kk, generator=g) < 0.5, -1e30)
        scores[:, 0] = -1e30  # a row of equal, finite, huge negative scores: uniform
        scores[:, -1, ::2] = neg_inf  # -1e30 and -inf mixed
    elif mask == "denormal":
        # exp(s - max) lands in (1e-45, 1e-38) for most keys: denormals in the reference
        scores = -95.0 + torch.rand(heads, c, kk, generator=g) * 8.0
        scores[..., 0] = 0.0
    return scores.contiguous(), rows


@contextmanager
def threads(n: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_both(scores, rows, key_offset, k, fused=kernels.softmax_stats_fused):
    """The reference on one thread (its many small ops crawl when the 2 cores are shared),
    the fused kernel on torch's threads (its parallel path is what the capture runs)."""
    a, b = scores.clone(), scores.clone()
    with threads(1):
        ref = softmax_stats_torch(a, rows, key_offset, k)
    out = fused(b, rows, key_offset, k)
    return a, ref, b, out


def check_equal(case: str, ref_probs, ref: BlockStats, probs, out: BlockStats, key_offset: int, k: int) -> None:
    with threads(1):
        _check_equal(case, ref_probs, ref, probs, out, key_offset, k)


def _check_equal(case: str, ref_probs, ref: BlockStats, probs, out: BlockStats, key_offset: int, k: int) -> None:
    heads, c, kk = ref_probs.shape
    for name in STAT_FIELDS:
        r, o = getattr(ref, name), getattr(out, name)
        assert o.shape == r.shape and o.dtype == r.dtype, f"{case}: {name} {o.shape} {o.dtype} vs {r.shape} {r.dtype}"
        assert torch.isfinite(o.float()).all(), f"{case}: {name} has NaN/inf"
    def err(x: torch.Tensor, y: torch.Tensor) -> float:
        return (x.double() - y.double()).abs().max().item() if x.numel() else 0.0

    assert err(probs, ref_probs) <= TOL, f"{case}: probabilities differ by {err(probs, ref_probs)}"
    for name in ("sink", "prev", "head_sum", "head_max", "topk_values"):
        assert err(getattr(out, name), getattr(ref, name)) <= TOL, f"{case}: {name} differs by {err(getattr(out, name), getattr(ref, name))}"
    # The reference itself is float32 (-sum p log p over up to 2048 terms, an einsum of p with
    # gaps in the thousands): its own rounding is about 1 ulp, so entropy gets 1e-6 + 2e-7
    # relative and distance (values up to ~2000) a relative bound. test_fused_is_accurate holds
    # the fused kernel to float64 truth with 1e-6.
    torch.testing.assert_close(out.entropy, ref.entropy, atol=TOL, rtol=2e-7, msg=lambda m: f"{case}: entropy {m}")
    torch.testing.assert_close(out.distance, ref.distance, atol=TOL, rtol=1e-5, msg=lambda m: f"{case}: distance {m}")

    # top-k indices: in range, distinct, pointing at keys with the reference's top values,
    # equal to the reference's wherever that value is unique in its row.
    k_eff = min(k, kk)
    idx = out.topk_indices
    assert ((idx >= key_offset) & (idx < key_offset + kk)).all(), f"{case}: top-k index out of range"
    if k_eff < k:
        assert (idx[..., k_eff:] == key_offset).all() and (out.topk_values[..., k_eff:] == 0).all(), f"{case}: padding"
    local = idx[..., :k_eff] - key_offset
    if k_eff > 1:
        srt = local.sort(-1).values
        assert (srt[..., 1:] != srt[..., :-1]).all(), f"{case}: repeated top-k index"
    pointed = ref_probs.gather(-1, local)
    assert err(pointed, ref.topk_values[..., :k_eff]) <= TOL, f"{case}: top-k indices point at other weights"
    sorted_ref = ref_probs.topk(min(k_eff + 1, kk), dim=-1).values.double()
    v = sorted_ref[..., :k_eff]
    gap_prev = torch.full_like(v, float("inf"))
    gap_prev[..., 1:] = v[..., 1:] - v[..., :-1]
    gap_next = torch.full_like(v, float("inf"))
    gap_next[..., : sorted_ref.shape[-1] - 1] = sorted_ref[..., :-1] - sorted_ref[..., 1:]
    distinct = (gap_prev.abs() > 2 * TOL) & (gap_next.abs()[..., :k_eff] > 2 * TOL)
    same = idx[..., :k_eff] == ref.topk_indices[..., :k_eff]
    assert same[distinct].all(), f"{case}: top-k index differs where the value is unique"


@pytest.mark.parametrize("kk", [1, 5, 300, 2048])
@pytest.mark.parametrize("c", [1, 7, 64])
@pytest.mark.parametrize("heads", [1, 4, 9])
def test_fused_matches_torch(fused_ops, heads, c, kk):
    for mi, mask in enumerate(MASKS):
        for key_offset in (0, 37):
            scores, rows = make_block(heads, c, kk, key_offset, mask, seed=1000 * mi + heads * 100 + c + kk)
            for k in (1, 8, 12):
                case = f"H={heads} c={c} kk={kk} k={k} offset={key_offset} mask={mask}"
                ref_probs, ref, probs, out = run_both(scores, rows, key_offset, k)
                check_equal(case, ref_probs, ref, probs, out, key_offset, k)


def test_special_rows(fused_ops):
    """Rows the reference defines exactly: fully masked -> zeros; one key -> p = 1, entropy 0."""
    scores = torch.randn(3, 4, 70)
    scores[:, 0] = float("-inf")
    scores[:, 1] = float("-inf")
    scores[:, 1, 5] = 2.0
    rows = torch.tensor([10, 20, 30, 40])
    out = softmax_stats(scores, rows, 0, 8, backend="fused")
    assert (scores[:, 0] == 0).all() and (out.entropy[:, 0] == 0).all() and (out.distance[:, 0] == 0).all()
    assert (out.topk_values[:, 0] == 0).all() and (out.sink[:, 0] == 0).all() and (out.prev[:, 0] == 0).all()
    assert (scores[:, 1, 5] == 1).all() and (scores[:, 1].sum(-1) == 1).all() and (out.entropy[:, 1] == 0).all()
    assert (out.distance[:, 1] == 15).all() and (out.topk_indices[:, 1, 0] == 5).all()
    assert torch.allclose(scores.sum(-1)[:, 2:], torch.ones(3, 2))


def test_fused_is_accurate(fused_ops):
    """Against float64 truth the fused statistics are within 1e-6 (distance: relative)."""
    scores, rows = make_block(9, 64, 2048, 0, "causal", seed=7)
    scores /= 3.0  # flat rows: entropies near log(2048), where float32 rounding shows most
    truth = torch.softmax(scores.double(), -1)
    entropy = -torch.special.xlogy(truth, truth).sum(-1)
    gaps = (rows[:, None] - torch.arange(2048)[None, :]).abs().double()
    distance = (truth * gaps).sum(-1)
    probs = scores.clone()
    out = softmax_stats(probs, rows, 0, 8, backend="fused")
    assert (probs.double() - truth).abs().max() <= TOL
    assert (out.entropy.double() - entropy).abs().max() <= TOL
    assert ((out.distance.double() - distance).abs() / distance).max() <= TOL


def test_exp_accuracy(fused_ops, scalar_ops):
    x = torch.linspace(-87.33, 0.0, 2_000_001)
    x = torch.cat([x, -torch.rand(100_000) * 0.01, torch.tensor([0.0, -87.3365, -1e-30])])
    truth = torch.exp(x.double())
    for ops in (fused_ops, scalar_ops):
        y = ops.exp(x).double()
        assert ((y - truth).abs() / truth).max() <= 2e-7
        low = torch.tensor([-87.34, -88.0, -95.0, -103.0, -104.0, -1e30, float("-inf")])
        assert (ops.exp(low) == 0).all()  # exact zeros, never denormals


def test_scalar_build_matches_torch(scalar_ops):
    fused = lambda s, r, o, k: kernels.softmax_stats_fused(s, r, o, k, ops=scalar_ops)  # noqa: E731
    for mi, mask in enumerate(MASKS):
        for heads, c, kk in ((1, 1, 1), (4, 7, 5), (9, 64, 300), (3, 16, 2048)):
            for key_offset in (0, 37):
                scores, rows = make_block(heads, c, kk, key_offset, mask, seed=mi * 10 + kk)
                for k in (1, 12):
                    case = f"scalar H={heads} c={c} kk={kk} k={k} offset={key_offset} mask={mask}"
                    ref_probs, ref, probs, out = run_both(scores, rows, key_offset, k, fused)
                    check_equal(case, ref_probs, ref, probs, out, key_offset, k)


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_sum_and_max_go_into_the_callers_accumulators(fused_ops, backend):
    """As the capture calls it: views into n x n arrays that already hold earlier heads' and
    layers' values; the block's sum over heads is added and its max taken, nothing else moves."""
    scores, rows = make_block(9, 16, 300, 40, "random", seed=21)
    g = torch.Generator().manual_seed(22)
    total, peak = torch.rand(400, 400, generator=g), torch.rand(400, 400, generator=g) * 0.5
    before_total, before_peak = total.clone(), peak.clone()
    view = (slice(100, 116), slice(40, 340))
    probs = scores.clone()
    out = softmax_stats(probs, rows, 40, 8, backend=backend, head_sum=total[view], head_max=peak[view])
    expected_total, expected_peak = before_total.clone(), before_peak.clone()
    expected_total[view] += probs.sum(0)
    expected_peak[view] = torch.maximum(expected_peak[view], probs.amax(0))
    assert (total - expected_total).abs().max() <= TOL and torch.equal(peak, expected_peak)
    assert out.head_sum.data_ptr() == total[view].data_ptr()  # the caller's memory, no copy


def test_large_k_and_ties(fused_ops):
    """k = 64 (more than the kernel's 32 top-k blocks), rows of equal scores, and k = 0."""
    scores, rows = make_block(9, 64, 2048, 5, "causal", seed=3)
    ref_probs, ref, probs, out = run_both(scores, rows, 5, 64)
    check_equal("k=64", ref_probs, ref, probs, out, 5, 64)
    ties = torch.zeros(2, 3, 100)
    ties[:, :, 50:] = 1.0
    ref_probs, ref, probs, out = run_both(ties, torch.tensor([99, 99, 99]), 0, 8)
    check_equal("ties", ref_probs, ref, probs, out, 0, 8)
    assert (out.topk_indices >= 50).all()
    ref_probs, ref, probs, out = run_both(scores, rows, 5, 0)  # k = 0: statistics only
    assert out.topk_values.shape == (9, 64, 0) == ref.topk_values.shape
    check_equal("k=0", ref_probs, ref, probs, out, 5, 0)


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_floating_point_state_unchanged(fused_ops, backend):
    """FTZ/DAZ are set only inside the kernel: denormals still exist afterwards, on every thread."""

    def denormals_alive() -> bool:
        one = (torch.tensor(1e-40) * 1).item() != 0
        many = bool(((torch.full((1 << 18,), 1e-40) * 1.0) != 0).all())  # spread over the intra-op threads
        return one and many

    assert denormals_alive()
    scores, rows = make_block(9, 64, 2048, 0, "denormal", seed=11)
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            softmax_stats(scores.clone(), rows, 0, 8, backend=backend)
        finally:
            torch.set_num_threads(previous)
        assert denormals_alive()


def test_one_openmp_runtime(fused_ops):
    """Loading the extension adds no OpenMP runtime: it uses the libgomp torch already loaded.

    (Other wheels, e.g. sentencepiece, may carry their own; that is not the extension's doing.)
    """
    script = textwrap.dedent(
        """
        import torch
        from attnlens.extraction import kernels

        def gomp():
            with open("/proc/self/maps") as f:
                return {line.split()[-1] for line in f if "gomp" in line.rsplit("/", 1)[-1]}

        before = gomp()
        kernels.fused_ops()
        print(sorted(before), sorted(gomp()))
        assert gomp() == before, (before, gomp())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_auto_picks_fused(fused_ops):
    assert kernels.resolve_backend("auto") == "fused"
    assert kernels.resolve_backend("torch") == "torch"
    with pytest.raises(ValueError):
        kernels.resolve_backend("nope")
    scores, rows = make_block(4, 7, 300, 3, "causal", seed=5)
    a, b = scores.clone(), scores.clone()
    auto = softmax_stats(a, rows, 3, 8, backend="auto")
    fused = softmax_stats(b, rows, 3, 8, backend="fused")
    assert torch.equal(a, b)  # bit-identical: the same kernel
    for name in STAT_FIELDS:
        assert torch.equal(getattr(auto, name), getattr(fused, name)), name
    # inputs the kernel does not take (float64 here) go to the reference under any backend
    d = scores.double()
    out = softmax_stats(d.clone(), rows, 3, 8, backend="auto")
    ref = softmax_stats_torch(d.clone(), rows, 3, 8)
    assert torch.equal(out.entropy, ref.entropy)


def test_failed_build_falls_back_to_torch(tmp_path):
    """A cache that cannot be written (so no build): one warning line, torch results, no crash."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    script = textwrap.dedent(
        """
        import warnings
        import torch
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from attnlens.extraction import kernels
            assert kernels.resolve_backend("auto") == "torch"
            scores = torch.randn(2, 3, 10)
            out = kernels.softmax_stats(scores.clone(), torch.arange(7, 10), 0, 4, backend="auto")
            ref = kernels.softmax_stats_torch(scores.clone(), torch.arange(7, 10), 0, 4)
            assert torch.equal(out.entropy, ref.entropy)
            ok, reason = kernels.fused_available()
            assert not ok and reason
        mine = [w for w in caught if "fused softmax kernel" in str(w.message)]
        assert len(mine) == 1 and "\\n" not in str(mine[0].message), [str(w.message) for w in caught]
        print("FALLBACK-OK", mine[0].message)
        """
    )
    env = dict(os.environ, ATTNLENS_CACHE=str(blocker / "cache"))
    env.pop(kernels.DISABLE_ENV, None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FALLBACK-OK" in proc.stdout
