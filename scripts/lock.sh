#!/usr/bin/env bash
# Re-resolve requirements/cpu.in into requirements/lock-cpu.txt (takes 3-5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/v"
"$tmp/v/bin/pip" install -q torch==2.13.0
echo 'torch==2.13.0+cpu' > "$tmp/constraints.txt"
"$tmp/v/bin/pip" install -q -r requirements/cpu.in -c "$tmp/constraints.txt"
{ sed -n '/^#/p' requirements/lock-cpu.txt
  "$tmp/v/bin/pip" freeze | grep -viE '^(torch|torchvision|torchaudio|torchcodec|triton)=='; } > "$tmp/lock.txt"
mv "$tmp/lock.txt" requirements/lock-cpu.txt
echo "wrote requirements/lock-cpu.txt"
