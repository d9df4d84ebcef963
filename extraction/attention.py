"""Capture attention without materialising layers x heads x n x n.

The model runs its normal forward with one change: its attention layers call
`_attention`, registered with transformers' AttentionInterface. That function computes each
layer's attention itself, block by block of query rows, and from the same probabilities both
the layer output and what attnlens keeps (see record.ARRAYS). Only one block of
heads x rows x keys scores exists at a time; accumulators are n x n at most, unless the user
asks for the full weights.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.masking_utils import sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from attnlens.errors import CaptureError
from attnlens.extraction.kernels import resolve_backend, softmax_stats
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import ArchitectureInfo, AttentionRecord, Generation

IMPLEMENTATION = "attnlens_capture"


@dataclass(frozen=True)
class CaptureConfig:
    rows: Literal["answer", "last", "all"] | tuple[int, ...] = "answer"
    top_k: int = 8
    block_rows: int | None = None  # None: sized so one block of scores stays about 16 MB
    rollout_max_tokens: int = 1024  # rollout costs O(layers n^3): skipped above this, and said so
    keep_layers: tuple[int, ...] = ()  # layers whose head-mean n x n is kept (graph source "layer")
    full: bool = False  # keep every weight (debug view; layers x heads x n x n)
    backend: str = "auto"  # softmax/statistics kernel: auto | fused | torch


@dataclass
class _Sequence:
    """Accumulators of one sequence of the batch, in its own (unpadded) coordinates."""

    pad: int
    n: int
    row_positions: torch.Tensor
    arrays: dict[str, torch.Tensor] = field(default_factory=dict)
    rollout: torch.Tensor | None = None


class _Session:
    def __init__(self, arch: ArchitectureInfo, pads: list[int], total: int, rows: list[list[int]], config: CaptureConfig):
        self.arch, self.config = arch, config
        self.backend = resolve_backend(config.backend)
        self.layer = 0
        L, H, k = arch.layers, arch.heads, config.top_k
        self.sequences: list[_Sequence] = []
        for pad, positions in zip(pads, rows):
            n = total - pad
            seq = _Sequence(pad, n, torch.tensor(positions, dtype=torch.long))
            a = seq.arrays
            a["rows"] = torch.zeros(L, H, len(positions), n)
            a["mean"] = torch.zeros(n, n)
            a["max"] = torch.zeros(n, n)
            for stat in ("head_entropy", "head_distance", "head_sink", "head_prev", "head_topk_mass"):
                a[stat] = torch.zeros(L, H)
            a["topk_values"] = torch.zeros(L, H, n, k)
            a["topk_indices"] = torch.zeros(L, H, n, k, dtype=torch.int32)
            if config.keep_layers:
                a["layer_mean"] = torch.zeros(len(config.keep_layers), n, n)
            if config.full:
                a["full"] = torch.zeros(L, H, n, n)
            if n <= config.rollout_max_tokens:
                seq.rollout = torch.eye(n)
            self.sequences.append(seq)

    def block_rows(self, n: int) -> int:
        if self.config.block_rows:
            return self.config.block_rows
        # about 16 MB of scores per block: at 8192 tokens (SmolLM2) 64 rows took 46.5 s against
        # 56.8 s for 16 rows (4 MB) and 54.3 s for 256 rows (75 MB, past the 48 MB L3 cache)
        return max(16, min(n, (1 << 22) // max(1, self.arch.heads * n)))

    def attend(self, module, query, key, value, mask, scaling: float, causal: bool, softcap: float | None):
        """One layer for the whole batch. query Float[B H N D]; key/value Float[B KV N D]."""
        layer = self.layer
        if getattr(module, "layer_idx", layer) not in (layer, None):
            raise CaptureError(f"layers ran out of order ({module.layer_idx} after {layer - 1})")
        B, H, N, D = query.shape
        kv = key.shape[1]
        group = H // kv
        out = query.new_zeros(B, H, N, value.shape[-1])
        need_layer_mean = bool(self.config.keep_layers and layer in self.config.keep_layers)
        for b, seq in enumerate(self.sequences):
            p0, n = seq.pad, seq.n
            q = (query[b, :, p0:].float() * scaling).reshape(kv, group, n, D)
            k = key[b, :, p0:].float()
            v = value[b, :, p0:].float()
            m = None if mask is None else mask[b, 0, p0:, p0:]
            layer_mean = torch.zeros(n, n) if (seq.rollout is not None or need_layer_mean) else None
            step = self.block_rows(n)
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                c = r1 - r0
                if m is None:
                    lo, hi = 0, (r1 if causal else n)
                    block_mask = None
                else:
                    block_mask = m[r0:r1]
                    cols = block_mask.any(0).nonzero()
                    lo, hi = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 1)
                    block_mask = block_mask[:, lo:hi]
                kk = hi - lo
                scores = torch.matmul(q[:, :, r0:r1].reshape(kv, group * c, D), k[:, lo:hi].transpose(1, 2))
                scores = scores.view(H, c, kk)
                if softcap:
                    scores = torch.tanh(scores / softcap).mul_(softcap)
                if block_mask is not None:
                    scores.masked_fill_(~block_mask, float("-inf"))
                elif causal and c > 1:  # only the block's diagonal square has future keys
                    future = torch.ones(c, c, dtype=torch.bool).triu_(1)
                    scores[:, :, r0 - lo : r1 - lo].masked_fill_(future, float("-inf"))
                positions = torch.arange(r0, r1)
                # the sum over heads goes straight into the layer's mean when one is kept (it joins
                # the overall mean after the layer), else into the overall mean
                total = layer_mean if layer_mean is not None else seq.arrays["mean"]
                stats = softmax_stats(
                    scores, positions, lo, self.config.top_k, self.backend,
                    head_sum=total[r0:r1, lo:hi], head_max=seq.arrays["max"][r0:r1, lo:hi],
                )
                probs = scores  # overwritten in place with the probabilities
                out[b, :, p0 + r0 : p0 + r1] = torch.matmul(
                    probs.view(kv, group * c, kk), v[:, lo:hi]
                ).view(H, c, -1).to(out.dtype)
                self._accumulate(seq, layer, r0, r1, lo, hi, probs, stats)
            if layer_mean is not None:
                seq.arrays["mean"] += layer_mean
                layer_mean.div_(H)
                if need_layer_mean:
                    seq.arrays["layer_mean"][self.config.keep_layers.index(layer)] = layer_mean
                if seq.rollout is not None:  # Abnar & Zuidema: A = 0.5 W + 0.5 I, rollout_l = A_l rollout_(l-1)
                    mixed = layer_mean.mul_(0.5)
                    mixed.diagonal().add_(0.5)
                    seq.rollout = mixed @ seq.rollout
        self.layer += 1
        return out.transpose(1, 2).contiguous()

    def _accumulate(self, seq: _Sequence, layer, r0, r1, lo, hi, probs, stats) -> None:
        """Everything but mean and max (softmax_stats added those in place)."""
        a = seq.arrays
        a["head_entropy"][layer] += stats.entropy.sum(1)
        a["head_distance"][layer] += stats.distance.sum(1)
        a["head_sink"][layer] += stats.sink.sum(1)
        a["head_prev"][layer] += stats.prev.sum(1)
        a["head_topk_mass"][layer] += stats.topk_values.sum((1, 2))
        a["topk_values"][layer, :, r0:r1] = stats.topk_values
        a["topk_indices"][layer, :, r0:r1] = stats.topk_indices.to(torch.int32)
        inside = ((seq.row_positions >= r0) & (seq.row_positions < r1)).nonzero().flatten()
        if len(inside):
            a["rows"][layer, :, inside, lo:hi] = probs[:, seq.row_positions[inside] - r0]
        if "full" in a:
            a["full"][layer, :, r0:r1, lo:hi] = probs

    def finish(self) -> list[tuple[dict[str, torch.Tensor], bool]]:
        L, H = self.arch.layers, self.arch.heads
        if self.layer != L:
            raise CaptureError(
                f"captured {self.layer} of {L} attention layers: this model's attention cannot be captured"
            )
        results = []
        for seq in self.sequences:
            a = seq.arrays
            a["mean"].div_(L * H)
            for stat in ("head_entropy", "head_distance", "head_sink", "head_prev", "head_topk_mass"):
                a[stat].div_(seq.n)
            a["row_positions"] = seq.row_positions
            if seq.rollout is not None:
                a["rollout"] = seq.rollout
            results.append((a, seq.rollout is not None))
        return results


_active: list[_Session] = []


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None, **kwargs):
    """The registered attention function. Without an active capture it is plain SDPA."""
    if not _active:
        return ALL_ATTENTION_FUNCTIONS["sdpa"](
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    for unsupported in ("s_aux", "sinks", "position_bias"):
        if kwargs.get(unsupported) is not None:
            raise CaptureError(f"attention with {unsupported!r} is not supported by the capture")
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        raise CaptureError("expected a boolean attention mask from the registered mask function")
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    causal = bool(causal and attention_mask is None and query.shape[2] > 1)
    out = _active[-1].attend(module, query, key, value, attention_mask, scaling, causal, kwargs.get("softcap"))
    return out, None


AttentionInterface.register(IMPLEMENTATION, _attention)
# Without a mask function under the same name the mask handed to _attention is always None,
# and padding and sliding windows would be silently ignored.
AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)


@contextlib.contextmanager
def capturing(model: torch.nn.Module, session: _Session):
    """Route the model's attention through the capture; always restores the previous implementation."""
    previous = model.config._attn_implementation
    try:
        model.set_attn_implementation(IMPLEMENTATION)
    except (ValueError, ImportError) as exc:
        raise CaptureError(f"this model's attention cannot be captured: {exc}") from exc
    if model.config._attn_implementation != IMPLEMENTATION:
        model.set_attn_implementation(previous)
        raise CaptureError(
            f"this model ({type(model).__name__}) does not use transformers' AttentionInterface, "
            "so its attention cannot be captured"
        )
    _active.append(session)
    flush = torch.set_flush_denormal(True)  # denormal exp() results make later ops 5-15x slower
    try:
        yield session
    finally:
        _active.remove(session)
        if flush:
            torch.set_flush_denormal(False)
        model.set_attn_implementation(previous)


def _default_rows(generation: Generation, kind: str, rows) -> list[int]:
    n = len(generation.tokens)
    if rows == "all":
        return list(range(n))
    if rows == "last":
        return [n - 1]
    if rows == "answer":
        if generation.answer_start < n:
            return [t - 1 for t in generation.answer_indices]  # the queries that produced the answer
        return [0] if kind == "encoder" else [n - 1]  # [CLS] for encoders, the next-token query otherwise
    positions = [int(p) for p in rows]
    bad = [p for p in positions if not 0 <= p < n]
    if bad:
        raise ValueError(f"row positions {bad} are outside 0..{n - 1}")
    return positions


def capture_ids(
    model: torch.nn.Module,
    arch: ArchitectureInfo,
    sequences: list[list[int]],
    rows: list[list[int]],
    config: CaptureConfig = CaptureConfig(),
) -> tuple[list[tuple[dict[str, torch.Tensor], bool]], torch.Tensor]:
    """Capture for a batch of token-id sequences (left-padded together). Returns arrays per sequence and the last logits/hidden state."""
    total = max(len(s) for s in sequences)
    pads = [total - len(s) for s in sequences]
    input_ids = torch.tensor([[0] * p + list(s) for p, s in zip(pads, sequences)])
    attention_mask = torch.tensor([[0] * p + [1] * len(s) for p, s in zip(pads, sequences)])
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    session = _Session(arch, pads, total, rows, config)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
    accepted = inspect.signature(model.forward).parameters
    if "logits_to_keep" in accepted:
        kwargs["logits_to_keep"] = 1  # logits for every position would cost n x vocab floats
    if "use_cache" in accepted:
        kwargs["use_cache"] = False
    with capturing(model, session), torch.inference_mode():
        output = model(**kwargs)
    last = output.logits if hasattr(output, "logits") else output.last_hidden_state
    return session.finish(), last[:, -1]


def capture(
    lm: LoadedModel, generation: Generation | list[Generation], config: CaptureConfig = CaptureConfig()
) -> AttentionRecord | list[AttentionRecord]:
    """Capture attention over prompt + answer. A list of generations runs as one padded batch."""
    batch = generation if isinstance(generation, list) else [generation]
    for g in batch:
        if not g.tokens:
            raise ValueError("cannot capture attention over zero tokens")
    rows = [_default_rows(g, lm.architecture.kind, config.rows) for g in batch]
    started = time.perf_counter()
    results, _ = capture_ids(lm.model, lm.architecture, [g.token_ids for g in batch], rows, config)
    seconds = time.perf_counter() - started
    records = []
    for g, (arrays, has_rollout) in zip(batch, results):
        info = {
            "config": asdict(config),
            "backend": resolve_backend(config.backend),
            "rollout": "computed" if has_rollout else f"skipped: n > rollout_max_tokens ({config.rollout_max_tokens})",
            "row_convention": "row i of `rows` is the query at row_positions[i]; answer token t is produced by query t-1",
            "batch_size": len(batch),
            "seconds": seconds,
            "torch": torch.__version__,
            "model_checksum": lm.spec.checksum() if lm.spec is not None else None,
        }
        records.append(AttentionRecord(g, lm.architecture, arrays, info))
    return records if isinstance(generation, list) else records[0]
