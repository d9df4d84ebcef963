"""Exactness of every captured quantity against Hugging Face eager output_attentions=True."""

import copy

import pytest
import torch
import transformers

from attnlens.errors import CaptureError
from attnlens.extraction import CaptureConfig, capture, capture_ids, encode, generate, wrap
from tests.conftest import bundled_model

TOL = 1e-5


def eager_attention(model, ids: list[int]) -> torch.Tensor:
    """Float[L H n n] from the eager implementation: what every other tool materialises."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = model(torch.tensor([ids]), output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    return torch.stack([a[0] for a in out.attentions]).float()


def rollout(attn: torch.Tensor) -> torch.Tensor:
    n = attn.shape[-1]
    result = torch.eye(n)
    for layer in attn.mean(1):
        mixed = 0.5 * layer + 0.5 * torch.eye(n)
        result = (mixed / mixed.sum(-1, keepdim=True)) @ result
    return result


def assert_matches_eager(arrays: dict, attn: torch.Tensor, k: int, keep_layers=(), tol: float = TOL) -> None:
    n = attn.shape[-1]
    pos = torch.arange(n)
    gaps = (pos[:, None] - pos[None, :]).abs().float()
    prev = torch.zeros_like(attn[..., 0])
    prev[..., 1:] = attn[..., 1:, :-1].diagonal(dim1=-2, dim2=-1)
    expected = {
        "rows": attn[:, :, arrays["row_positions"]],
        "mean": attn.mean((0, 1)),
        "max": attn.amax((0, 1)),
        "head_entropy": -torch.special.xlogy(attn, attn).sum(-1).mean(-1),
        "head_sink": attn[..., 0].mean(-1),
        "head_prev": prev.mean(-1),
        "head_topk_mass": attn.topk(min(k, n), -1).values.sum(-1).mean(-1),
        "topk_values": attn.topk(min(k, n), -1).values,
    }
    if "rollout" in arrays:
        expected["rollout"] = rollout(attn)
    if keep_layers:
        expected["layer_mean"] = attn.mean(1)[list(keep_layers)]
    if "full" in arrays:
        expected["full"] = attn
    for name, want in expected.items():
        got = arrays[name]
        if name == "topk_values":
            got = got[..., : want.shape[-1]]
        assert got.shape == want.shape, name
        err = (got - want).abs().max().item()
        assert err <= tol, f"{name}: max abs error {err:.2e}"
    # distances are in tokens (up to n): compare them relatively
    distance = (attn * gaps).sum(-1).mean(-1)
    rel = ((arrays["head_distance"] - distance).abs() / distance.clamp_min(1)).max().item()
    assert rel <= tol, f"head_distance: max relative error {rel:.2e}"
    # indices: the captured index must point at a key holding the captured value
    idx = arrays["topk_indices"].long()[..., : min(k, n)]
    picked = attn.gather(-1, idx)
    assert (picked - arrays["topk_values"][..., : min(k, n)]).abs().max() <= tol


# ---------------------------------------------------------------- the bundled models


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m", "minilm-l6"])
def test_bundled_model_capture_equals_eager(name):
    lm = bundled_model(name)
    prompt = "The Eiffel Tower is in Paris. Which city is the Eiffel Tower in?"
    gen = generate(lm, prompt, max_new_tokens=6)
    config = CaptureConfig(rows="all", keep_layers=(0, lm.architecture.layers - 1))
    record = capture(lm, gen, config)
    assert_matches_eager(record.arrays, eager_attention(lm.model, gen.token_ids), config.top_k, config.keep_layers)


@pytest.mark.slow
def test_gemma_sliding_window_shorter_than_input(gemma):
    """Gemma 3 270M: 15 of 18 layers attend to 512 keys at most; 600 tokens cross that window."""
    arch = gemma.architecture
    assert arch.sliding_window == 512 and len(arch.sliding_layers) == 15
    gen = encode(gemma, " ".join(f"w{i}" for i in range(300)))
    n = len(gen.tokens)
    assert n > arch.sliding_window
    record = capture(gemma, gen, CaptureConfig(rows=(n - 1, n - 2), rollout_max_tokens=0))
    attn = eager_attention(gemma.model, gen.token_ids)
    sliding = arch.sliding_layers[0]
    assert attn[sliding, :, n - 1, : n - arch.sliding_window].abs().max() == 0  # the window really applies
    # Over 600 tokens with head_dim 256, float32 rounding alone moves eager ~4e-6 from the float64
    # truth, compounding through the layers' hidden states. The referee is float64: the capture must
    # be within two float32 roundings (2e-5) of it and of eager: top-8 masses sum eight rounded
    # values (1.15e-5 was measured once).
    truth = eager_attention(copy.deepcopy(gemma.model).double(), gen.token_ids)
    assert_matches_eager(record.arrays, truth.float(), 8, tol=2 * TOL)
    # against float32 eager: the capture's distance from the truth plus eager's own (the capture's
    # block size sets its matmuls' shapes and so its rounding: 2.01e-5 measured with 16 MB blocks)
    eager_error = (attn - truth.float()).abs().max().item()
    assert_matches_eager(record.arrays, attn, 8, tol=2 * TOL + eager_error)


@pytest.mark.slow
def test_qwen_capture_is_exact_against_float64_eager():
    """Qwen2.5-0.5B (24 layers, 14 heads over 2 KV heads) on a prompt of about 300 tokens."""
    lm = bundled_model("qwen2.5-0.5b")
    gen = encode(lm, " ".join(f"w{i}" for i in range(95)))
    n = len(gen.tokens)
    assert 250 <= n <= 400
    record = capture(lm, gen, CaptureConfig(rows=(n - 1, n - 2), rollout_max_tokens=0))
    attn = eager_attention(lm.model, gen.token_ids)
    assert_matches_eager(record.arrays, attn, 8, tol=2 * TOL)
    # Against the float64 referee the capture is as close as float32 eager itself: 4.7e-5 on the
    # top-8 values was measured for both (rounding in the hidden states, not in the capture).
    truth = eager_attention(copy.deepcopy(lm.model).double(), gen.token_ids)
    floor = max((attn.topk(8, -1).values - truth.topk(8, -1).values).abs().max().item(), (attn - truth).abs().max().item())
    assert_matches_eager(record.arrays, truth, 8, tol=floor + TOL)


@pytest.mark.slow
def test_smollm_gqa_layout(smollm):
    arch = smollm.architecture
    assert (arch.layers, arch.heads, arch.kv_heads) == (30, 9, 3)
    assert arch.kv_groups() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


# ---------------------------------------------------------------- tiny random-weight architectures

SMALL = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4)


def tiny(family: str):
    c = transformers
    configs = {
        "gpt2": lambda: c.GPT2Config(vocab_size=128, n_embd=64, n_layer=3, n_head=4, n_positions=128),
        "llama": lambda: c.LlamaConfig(**SMALL, num_key_value_heads=2, max_position_embeddings=128),
        "mistral": lambda: c.MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=7, max_position_embeddings=128),
        "qwen2": lambda: c.Qwen2Config(
            **SMALL, num_key_value_heads=2, use_sliding_window=True, sliding_window=6, max_window_layers=1,
            max_position_embeddings=128,
        ),
        "phi3": lambda: c.Phi3Config(**SMALL, num_key_value_heads=4, max_position_embeddings=128, pad_token_id=0),
        "gemma2": lambda: c.Gemma2Config(
            **SMALL, num_key_value_heads=1, head_dim=16, sliding_window=5, attn_logit_softcapping=20.0,
            max_position_embeddings=128,
        ),
        "gemma3_text": lambda: c.Gemma3TextConfig(
            **SMALL, num_key_value_heads=1, head_dim=16, sliding_window=6, max_position_embeddings=128,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        ),
        "bert": lambda: c.BertConfig(
            vocab_size=128, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
            max_position_embeddings=128,
        ),
    }
    torch.manual_seed(0)
    config = configs[family]()
    config._attn_implementation = "sdpa"
    auto = transformers.AutoModel if family == "bert" else transformers.AutoModelForCausalLM
    return wrap(auto.from_config(config))


FAMILIES = ["gpt2", "llama", "mistral", "qwen2", "phi3", "gemma2", "gemma3_text", "bert"]


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_architecture_capture_equals_eager(family):
    lm = tiny(family)
    ids = torch.randint(1, 128, (17,), generator=torch.Generator().manual_seed(1)).tolist()
    config = CaptureConfig(rows="all", keep_layers=(1,), full=True, top_k=5)
    [(arrays, _)], _ = capture_ids(lm.model, lm.architecture, [ids], [list(range(len(ids)))], config)
    assert_matches_eager(arrays, eager_attention(lm.model, ids), config.top_k, config.keep_layers)


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_equals_each_sequence_alone(family):
    """Two lengths in one left-padded batch: each sequence's capture equals eager on it alone."""
    lm = tiny(family)
    gen = torch.Generator().manual_seed(2)
    seqs = [torch.randint(1, 128, (n,), generator=gen).tolist() for n in (15, 9)]
    rows = [list(range(len(s))) for s in seqs]
    results, _ = capture_ids(lm.model, lm.architecture, seqs, rows, CaptureConfig(rows="all"))
    for seq, (arrays, _) in zip(seqs, results):
        assert_matches_eager(arrays, eager_attention(lm.model, seq), 8)


@pytest.mark.parametrize("family", ["llama", "gemma2", "bert"])
def test_capture_leaves_model_output_unchanged(family):
    """The layer outputs are computed from the captured probabilities: the model's output must not move."""
    lm = tiny(family)
    ids = list(range(3, 23))
    with torch.inference_mode():
        out = lm.model(torch.tensor([ids]))
    reference = (out.logits if hasattr(out, "logits") else out.last_hidden_state)[0, -1]
    _, last = capture_ids(lm.model, lm.architecture, [ids], [[len(ids) - 1]], CaptureConfig(rows="last"))
    assert (last[0] - reference).abs().max() <= 1e-4
    assert lm.model.config._attn_implementation == "sdpa"  # restored after the capture


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_both_kernel_backends_are_exact(backend):
    from attnlens.extraction.kernels import fused_available

    if backend == "fused" and not fused_available()[0]:
        pytest.fail(f"the fused kernel did not build: {fused_available()[1]}")
    lm = tiny("llama")
    ids = list(range(5, 40))
    config = CaptureConfig(rows="all", backend=backend, block_rows=8)
    [(arrays, _)], _ = capture_ids(lm.model, lm.architecture, [ids], [list(range(len(ids)))], config)
    assert_matches_eager(arrays, eager_attention(lm.model, ids), 8)


def test_gqa_and_sliding_layers_are_reported():
    arch = tiny("mistral").architecture
    assert arch.kv_groups() == [[0, 1], [2, 3]] and arch.sliding_window == 7 and arch.sliding_layers == [0, 1, 2]
    arch = tiny("gemma3_text").architecture
    assert arch.sliding_layers == [0, 1] and arch.kv_heads == 1
    assert tiny("bert").architecture.kind == "encoder"


def test_unsupported_model_is_a_clear_error():
    """A model that bypasses the AttentionInterface cannot be captured: say so, restore the model."""
    config = transformers.BloomConfig(vocab_size=64, hidden_size=32, n_layer=1, n_head=2)  # ALiBi, own attention
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    lm = wrap(model)
    with pytest.raises(CaptureError, match="cannot be captured"):
        capture_ids(lm.model, lm.architecture, [[1, 2, 3]], [[2]], CaptureConfig(rows="last"))
