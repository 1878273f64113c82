#!/usr/bin/env bash
# One chunk of the official SDSEN recipe (20,000 steps of 50 x 64x64, `sdsen train --preset
# official`) on a GPU lent for minutes at a time. At 73-132 ms per step on one H200 the whole
# recipe is 24-44 minutes: 3 to 6 chunks of 8 minutes, each ending with latest.pt.
#
#   on the device machine, from the repository root (carry runs/official after the first):
#       bash scripts/gpu_official_chunk.sh [MINUTES]       -> $OUT/official_run.tar.gz
#   back here, before the next chunk:
#       mkdir -p runs && tar xzf official_run.tar.gz -C runs
#
# The first call starts the run, every later one resumes it (`--resume`: batches, optimiser and
# schedule as if never stopped; bit for bit on a CPU, up to cuDNN rounding on a GPU) with the
# run's saved config.json, so a setting changed once (EXTRA) stays changed; each change is kept
# as a `resume` line of metrics.jsonl. The run in runs/official (2026-11-26) diverged at step
# 6,903 without clipping (bf16 loss NaN) and went on from its step-6,664 checkpoint with
# EXTRA="--grad-clip 1". When the
# last step is done the run folder holds the finished run; ship its weights with
#   python -c "from sdsen.train import model_from_checkpoint; from sdsen.pretrained import \
#   save_weights; save_weights(model_from_checkpoint('runs/official/latest.pt'), 'w.pt')"
# Environment: RUN (default runs/official), PRESET (default official), DEVICE (default cuda),
# EXTRA (more `sdsen train` flags, e.g. "--grad-clip 1"); a CPU dry run of the mechanism:
#   PRESET=quick DEVICE=cpu EXTRA="--steps 6 --val-every 0" OUT=/tmp/o \
#     bash scripts/gpu_official_chunk.sh 0.02
set -euo pipefail
MINUTES=${1:-8}
RUN=${RUN:-runs/official}
PRESET=${PRESET:-official}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT" "$(dirname "$RUN")"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
start=(--preset "$PRESET")
[ -f "$RUN/latest.pt" ] && start=(--resume)
# shellcheck disable=SC2086  # EXTRA is a list of flags
python3 -m sdsen train "${start[@]}" --data synthetic --rain-preset mixed --run-dir "$RUN" \
  --device "$DEVICE" --max-minutes "$MINUTES" --no-progress ${EXTRA:-} \
  2>&1 | tee "$OUT/chunk.log"
tar czf "$OUT/official_run.tar.gz" -C "$(dirname "$RUN")" "$(basename "$RUN")"
ls -la "$OUT"
