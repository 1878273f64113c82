#!/usr/bin/env bash
# One device-machine session: train the zoo side by side, score it, run the GPU tests.
# Produced the shipped weights: bash scripts/gpu_session.sh TRAIN_BUDGET_SECONDS
# Expects the validation folder copied to .carry/raincityscapes_test100 (never committed).
set -uo pipefail
BUDGET=${1:-400}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD MPLBACKEND=agg
WORK=/tmp/zoo
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, cv2, skimage; print('torch', torch.__version__, 'numpy', numpy.__version__)"
# smoke test of the whole path first (a failure here costs seconds, not the budget)
python3 scripts/train_pretrained.py --out /tmp/smoke --steps 3 --only sdsen plain --device cuda \
  > /tmp/smoke.log 2>&1 || { tail -30 /tmp/smoke.log; tail -30 /tmp/smoke/train_*.log; exit 1; }
grep -q '"sdsen": \[3, 0\]' /tmp/smoke.log || { cat /tmp/smoke.log; tail -30 /tmp/smoke/train_*.log; exit 1; }
python3 benchmarks/results.py evaluate --device cuda --weights-dir /tmp/smoke/weights --quick \
  --max-real 2 --real-root .carry/raincityscapes_test100 --out /tmp/smoke_results --only sdsen \
  || exit 1
echo "smoke OK"
python3 scripts/train_pretrained.py --out $WORK --budget "$BUDGET" --device cuda 2>&1 | tee $WORK.log
mkdir -p sdsen/weights && cp $WORK/weights/*.pt sdsen/weights/
timeout 150 python3 benchmarks/results.py evaluate --device cuda \
  --real-root .carry/raincityscapes_test100 --out /tmp/results 2>&1 | tail -12
timeout 60 python3 benchmarks/real_validation.py --device cuda --root .carry/raincityscapes_test100 \
  --weights sdsen dsen plain sdsen-p4m sdsen-uncalibrated --record /tmp/real_validation.md | tail -3
timeout 60 python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -3
tar czf "$OUT/zoo.tar.gz" -C /tmp zoo/weights zoo/zoo.json zoo.log \
  $(cd /tmp && ls zoo/train_*.log zoo/runs/*/metrics.jsonl zoo/runs/*/config.json) \
  results real_validation.md 2>&1 | tail -2
ls -la "$OUT"
