#!/usr/bin/env bash
# One chunk of the official SDSEN recipe (20,000 steps of 50 x 64x64, `sdsen train --preset
# official`) on a GPU lent for minutes at a time: 76-81 ms per step on one H200 (measured on
# the run below, before batches were prefetched), so 25-27 minutes in all, in chunks of a few
# minutes, each ending with latest.pt.
#
#   on the device machine, from the repository root (carry runs/official after the first,
#   and .carry/raincityscapes_test100 for the last):
#       bash scripts/gpu_official_chunk.sh [MINUTES]       -> $OUT/official_run.tar.gz
#   back here, before the next chunk:
#       mkdir -p runs && tar xzf official_run.tar.gz -C runs
#
# The first call starts the run, every later one resumes it (`--resume`: batches, optimiser and
# schedule as if never stopped; bit for bit on a CPU, up to cuDNN rounding on a GPU) with the
# run's saved config.json, so a setting changed once (EXTRA) stays changed; each change is kept
# as a `resume` line of metrics.jsonl. The run in runs/official (2026-11-26) diverged at step
# 6,903 without clipping (bf16 loss NaN) and went on from its step-6,664 checkpoint with
# EXTRA="--grad-clip 1".
#
# Once the run has done its last step, the call also scores it (benchmarks/results.py evaluate:
# the synthetic test photo and, when carried, the real folder) into $OUT/results/NAME.json.
# Back here, ship the weights from the same latest.pt and keep the scores:
#   python scripts/ship_run.py runs/official --name sdsen-official --force ...  (its --help)
#   cp results/sdsen-official.json benchmarks/results/
#   python benchmarks/results.py report --zoo benchmarks/results/zoo.json
# Environment: RUN (default runs/official), PRESET (default official), DEVICE (default cuda),
# EXTRA (more `sdsen train` flags, e.g. "--grad-clip 1"), SCORE (0: never score), NAME (default
# sdsen-official), REAL (default .carry/raincityscapes_test100), SCORE_FLAGS (more `results.py
# evaluate` flags); a CPU dry run of the mechanism (two calls: a chunk, then the rest and a score):
#   PRESET=quick DEVICE=cpu EXTRA="--steps 2 --val-every 0 --model-config stages=2" \
#     SCORE_FLAGS="--quick --parts synthetic" OUT=/tmp/o bash scripts/gpu_official_chunk.sh 0.02
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
# shellcheck disable=SC2086  # EXTRA and SCORE_FLAGS are lists of flags
python3 -m sdsen train "${start[@]}" --data synthetic --rain-preset mixed --run-dir "$RUN" \
  --device "$DEVICE" --max-minutes "$MINUTES" --no-progress ${EXTRA:-} \
  2>&1 | tee "$OUT/chunk.log"
tar czf "$OUT/official_run.tar.gz" -C "$(dirname "$RUN")" "$(basename "$RUN")"
# the last chunk also scores the finished run where it is (40 s on a GPU, half an hour on a
# 2-core CPU): weights written to a scratch folder only (ship them here with ship_run.py, from
# the same latest.pt), scores to $OUT/results/NAME.json for benchmarks/results/
REAL=${REAL:-.carry/raincityscapes_test100}
if [ "${SCORE:-1}" = 1 ] && python3 -c "import json, sys, torch; c = torch.load('$RUN/latest.pt', \
    weights_only=True); sys.exit(c['step'] < json.load(open('$RUN/config.json'))['train']['steps'])"
then
  NAME=${NAME:-sdsen-official}
  python3 scripts/ship_run.py "$RUN" --name "$NAME" --weights-dir /tmp/score_weights --force \
    --zoo /tmp/score_zoo.json --role scratch --hardware scratch --command scratch
  real=()
  [ -d "$REAL" ] && real=(--real-root "$REAL")
  python3 benchmarks/results.py evaluate --device "$DEVICE" --weights-dir /tmp/score_weights \
    --out "$OUT/results" --only "$NAME" "${real[@]}" ${SCORE_FLAGS:-} 2>&1 | tee "$OUT/score.log"
fi
ls -la "$OUT"
