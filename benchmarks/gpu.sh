#!/usr/bin/env bash
# The GPU benchmark in one command (< 8 minutes on one H100): the training/inference matrix
# with a time budget, then the 200-step facades "same learning" check for each GPU option.
#   bash benchmarks/gpu.sh [results-folder]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d_%H%M%S)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader > "$OUT/gpu_${STAMP}_device.txt" || true
# 330 s for the matrix leaves time for the configuration that is running when it ends.
timeout 400 "$PY" benchmarks/run_matrix.py --device cuda --budget_s 330 --out "$OUT/gpu_${STAMP}.jsonl" || echo "matrix stopped early"
if [ -d ../shared/datasets/facades ]; then
  timeout 80 "$PY" benchmarks/same_learning.py --device cuda --steps 200 \
    --variants eager_fp32,tf32,bf16,fp16 --out "$OUT/gpu_${STAMP}_same_learning.jsonl" || echo "same-learning stopped early"
fi
echo "results: $OUT/gpu_${STAMP}*.jsonl"
