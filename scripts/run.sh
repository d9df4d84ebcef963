#!/usr/bin/env bash
# The main job: set up everything, then run attnlens on the bundled models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/attnlens demo "$@"
