#!/usr/bin/env bash
# One device-machine call: train the 8-stage models with the official batch and patch size
# side by side on one GPU, score them there, bring everything back.
#
#   bash scripts/gpu_session.sh [TRAIN_SECONDS]      (run from the repository root)
#
# 1. probe (also the smoke test): 30 steps of every model at once, full batch; the slowest
#    model's seconds per step from step 10 to 20 (all still running) sets the steps that fit
#    80 % of TRAIN_SECONDS (rounded down to 100; the same for every model: equal budget);
# 2. train them all at once: scripts/train_pretrained.py --recipe gpu (batch 50 of 64x64, the
#    official Adam 5e-4 and decay at 75 % / 87.5 %, gradient norm clipped to 1) into /tmp/zoo,
#    starting from a copy of benchmarks/results/zoo.json so the new entries merge into it; a run
#    still going after TRAIN_SECONDS + 45 s stops there with its checkpoint and is shipped as it
#    is (its card says it stopped early). (The calls of 2026-11-26 had a `timeout` + --export-only
#    for this deadline instead; it was not reached.);
# 3. score each model in its own process (benchmarks/results.py evaluate; the sweep only for the
#    near-vertical models);
# 4. $OUT/zoo.tar.gz (weights, zoo.json, logs, scores) and $OUT/checkpoints.tar.gz (latest.pt of
#    each run, to resume or continue).
#
# Expects the validation folder copied to .carry/raincityscapes_test100 (never committed).
# The shipped GPU models came from two calls on 2026-11-26, with MODELS="sdsen plain sdsen-p4m
# sdsen-vertical sdsen-plain-vertical sdsen-p4m-vertical" (TRAIN_SECONDS 370: 600 steps) and
# MODELS="sdsen plain sdsen-p4m" (380: 1,700 steps), the gpu recipe then counting 1,000 steps;
# the last three were renamed *-gpu (scripts/train_pretrained.py says how).
# Environment: MODELS (names of train_pretrained.ZOO), RECIPE (default gpu), DEVICE (default
# cuda), PROBE_STEPS (default 30), MAX_STEPS (default 3000), LIMIT (seconds the whole script
# may take, default 570: scoring gets what is left). A CPU dry run of this script:
#   MODELS="plain" RECIPE=study DEVICE=cpu PROBE_STEPS=30 OUT=/tmp/o bash scripts/gpu_session.sh 20
set -uo pipefail
TRAIN_SECONDS=${1:-360}
OUT=${OUT:-/tmp/gpu_out}
MODELS=${MODELS:-"sdsen-gpu plain-gpu sdsen-p4m-gpu"}
RECIPE=${RECIPE:-gpu}
DEVICE=${DEVICE:-cuda}
PROBE_STEPS=${PROBE_STEPS:-30}
LIMIT=${LIMIT:-570}
MAX_STEPS=${MAX_STEPS:-3000}
REAL=.carry/raincityscapes_test100
WORK=/tmp/zoo
rm -rf /tmp/probe /tmp/results "$WORK"  # a fresh start: nothing to resume by accident
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD MPLBACKEND=agg
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
n_models=$(wc -w <<<"$MODELS")
base_steps=$(python3 -c "import sys; sys.path.insert(0, 'scripts'); import train_pretrained as t; print(t.RECIPES['$RECIPE']['steps'])")
TRAIN=(python3 scripts/train_pretrained.py --recipe "$RECIPE" --lr 5e-4 --grad-clip 1.0
       --jobs "$n_models" --threads 2 --device "$DEVICE")
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy, cv2, skimage; print('torch', torch.__version__, 'numpy', numpy.__version__)"

stamp "probe: $PROBE_STEPS steps of $MODELS at once"
"${TRAIN[@]}" --out /tmp/probe --steps-scale "$(python3 -c "print($PROBE_STEPS / $base_steps)")" \
  --val-every 100000 --only $MODELS > /tmp/probe.log 2>&1
cat /tmp/probe.log
tail -1 /tmp/probe.log | python3 -c "import json, sys; sys.exit(any(json.load(sys.stdin).values()))" \
  || { tail -40 /tmp/probe/train_*.log; exit 1; }
STEPS=$(python3 - "$TRAIN_SECONDS" "$base_steps" "$MAX_STEPS" $MODELS <<'EOF'
import json, sys
budget, base, cap, names = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
per_step = {}
for n in names:
    rows = [json.loads(x) for x in open(f"/tmp/probe/runs/{n}/metrics.jsonl")]
    rows = [r for r in rows if r["event"] == "train"]
    a, b = rows[0], rows[1]  # steps 10 and 20: every model is still running
    per_step[n] = (b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"])
json.dump(per_step, open("/tmp/probe_seconds_per_step.json", "w"), indent=1)
print({k: round(v, 3) for k, v in per_step.items()}, file=sys.stderr)
steps = int(0.8 * budget / max(per_step.values()) // 100 * 100)
print(max(100, min(cap, steps)))
EOF
)
stamp "training $STEPS steps each (seconds per step in the probe: /tmp/probe_seconds_per_step.json)"
[ -f benchmarks/results/zoo.json ] && cp benchmarks/results/zoo.json $WORK/zoo.json
SCALE=$(python3 -c "print($STEPS / $base_steps)")
"${TRAIN[@]}" --out $WORK --steps-scale "$SCALE" --only $MODELS \
  --max-minutes "$(python3 -c "print(($TRAIN_SECONDS + 45) / 60)")" 2>&1 | tee /tmp/zoo_train.log
LEFT=$(( LIMIT - ($(date +%s) - T0) - 25 ))
stamp "scoring (${LEFT} s left for it)"
mkdir -p /tmp/results
for n in $MODELS; do
  extra=""; case $n in *vertical) extra="--sweep-all";; esac
  OMP_NUM_THREADS=2 timeout $LEFT python3 benchmarks/results.py evaluate --device "$DEVICE" --weights-dir $WORK/weights \
    --real-root $REAL --out /tmp/results --only "$n" $extra > "/tmp/results/eval_$n.log" 2>&1 &
done
wait
cat /tmp/results/eval_*.log
stamp "packing"
cp /tmp/probe_seconds_per_step.json /tmp/probe.log $WORK/ 2>/dev/null
tar czf "$OUT/zoo.tar.gz" -C /tmp zoo/weights zoo/zoo.json zoo_train.log \
  zoo/probe_seconds_per_step.json zoo/probe.log results \
  $(cd /tmp && ls zoo/train_*.log zoo/runs/*/metrics.jsonl zoo/runs/*/config.json \
    zoo/runs/*/done.json 2>/dev/null)
tar czf "$OUT/checkpoints.tar.gz" -C /tmp $(cd /tmp && ls zoo/runs/*/latest.pt 2>/dev/null)
ls -la "$OUT"
stamp "done"
