#!/usr/bin/env bash
# The main job: set up everything, show every bundled model's attention, then explain one answer
# (generate -> capture -> Leiden clusters -> faithfulness -> rationale agent on vLLM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/attnlens demo
exec .venv/bin/attnlens explain --prompt "${1:-Anna has 5 pencils and gives away 2. How many pencils does she have left?}"
