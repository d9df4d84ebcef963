#!/usr/bin/env bash
# The annotation behind docs/findings.md and docs/report.md. Resumable: every step skips the cases
# it has finished, so re-run it (after an interruption, or in the next sitting) until it prints
# "all steps done". First a stratified 200-case sample of every model in every frame (the 1.5B
# model last), so that an unfinished annotation already covers most conditions; then the rest of
# the 500 cases for the three smaller models.
#   bash scripts/annotate-all.sh [ROOT]     (ROOT: where the runs go, default data/runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-data/runs}
bash scripts/setup.sh >/dev/null
annotate() {  # FRAME SAMPLE MODEL: SAMPLE "all" = the 500 cases
    local frame=$1 sample=$2 model=$3 args=()
    [ "$sample" = all ] || args=(--sample "$sample")
    echo "[annotate-all] $(date -u +%H:%M:%S) $frame frame, $sample cases, $model"
    .venv/bin/attnlens annotate --dataset data/cases.jsonl --out "$root/$frame" --frame "$frame" \
        -m "$model" "${args[@]}"
}
for model in smollm2-135m gemma3-270m qwen2.5-0.5b; do annotate plain 200 "$model"; done
for model in smollm2-135m qwen2.5-0.5b; do annotate chat 200 "$model"; done
for frame in plain chat; do annotate "$frame" 200 qwen2.5-1.5b; done  # the slowest: ~4x the 0.5B's time
for model in smollm2-135m gemma3-270m qwen2.5-0.5b; do annotate plain all "$model"; done
for model in smollm2-135m qwen2.5-0.5b; do annotate chat all "$model"; done
echo "[annotate-all] all steps done: now run"
echo "  attnlens findings --run $root/plain --run $root/chat --encoder minilm-l6 --out docs/findings.md --publish data/annotations"
