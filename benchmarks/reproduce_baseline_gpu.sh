#!/usr/bin/env bash
# The official NaiveBaseline's own train_gpt.py through `pgolf reproduce` on a GPU machine, with
# substitute shards in its format (our own stdlib corpus and a SentencePiece model of the same
# vocabulary size, 1024) and the replayed clock at a short cap (issue 18).
#
# Usage: bash benchmarks/reproduce_baseline_gpu.sh RECORD_DIR OUTDIR [CAP_S] [NPROC]
#   RECORD_DIR  records/track_10min_16mb/2026-03-17_NaiveBaseline of the challenge repository, e.g.
#               git --git-dir "$PGOLF_CHALLENGE_REPO" archive refs/heads/main \
#                   records/track_10min_16mb/2026-03-17_NaiveBaseline | tar -x -C /tmp/pg
#               (its code is read and run here, never committed to pgolf)
#   CAP_S       the short cap (default 10 s of replayed time: 10 / 43.544 ms = step 230)
#   NPROC       GPUs (default: all visible)
#
# Three runs, each reported in OUTDIR:
#   replay/  the replayed clock at the claimed 43.544 ms/step, cap CAP_S: must stop at step
#            floor(CAP_S*1000/43.544)+1 whatever this GPU's speed, and report the real ms/step
#   raw/     the real clock at the same cap (--no-match-steps): stops where this GPU gets to
#   steps/   the cap lifted, ITERATIONS=50 (--no-replay-clock --env ITERATIONS=50): the step-matched path
# The scores are not comparable with the claim (other data); what counts is where each run stopped,
# the measured throughput, REPRODUCE-THROUGHPUT / -TIMING / -STEP-MATCH, and that nothing crashed.
set -u
REC=${1:?usage: reproduce_baseline_gpu.sh RECORD_DIR OUTDIR [CAP_S] [NPROC]}
OUT=${2:?usage: reproduce_baseline_gpu.sh RECORD_DIR OUTDIR [CAP_S] [NPROC]}
CAP=${3:-10}
PY=${PYTHON:-python3}
NPROC=${4:-$($PY -c "import torch; print(max(1, torch.cuda.device_count()))")}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"

DATA="$OUT/data"
t0=$(date +%s)
$PY -m auditor data build --stdlib --name stdlib --vocab-size 1024 --out "$DATA" 2>&1 | tail -3
DS="$DATA/datasets/stdlib_sp1024"
TOK="$DATA/tokenizers/stdlib_1024_bpe.model"
ls -l "$DS" "$TOK" || { echo "no substitute data"; exit 1; }
t1=$(date +%s)
echo "substitute data: $((t1 - t0)) s"

SAND=--no-sandbox
$PY -c "from auditor.reproduce.sandbox import bwrap_works; import sys; sys.exit(0 if bwrap_works()[0] else 1)" && SAND=

run() {  # name, extra options...
  local name=$1; shift
  local t=$(date +%s)
  rm -rf "$OUT/$name"
  # --force: the cap is not 600 s and the val token count is not FineWeb's (preflight says both)
  $PY -m auditor reproduce "$REC" --nproc "$NPROC" $SAND --force --data "$DS" --tokenizer "$TOK" \
      --env MAX_WALLCLOCK_SECONDS="$CAP" --env VAL_LOSS_EVERY=0 --env TRAIN_LOG_EVERY=10 --target 8xH100 \
      --timeout 500 --run-dir "$OUT/$name" -f json -o "$OUT/$name.json" "$@" 2> "$OUT/$name.stderr"
  echo "$name: exit $? in $(( $(date +%s) - t )) s"
  $PY - "$OUT/$name.json" <<'EOF'
import json, sys
try:
    rec = json.load(open(sys.argv[1]))["records"][0]
except Exception as exc:
    print("  no report:", exc); sys.exit(0)
for r in rec["measured"].get("reproduce", {}).get("seeds", []):
    print("  seed {seed}: mode {mode}, stop step {stop_step} (claimed {claimed_stop_step}), replayed {replayed_ms_per_step} ms/step, "
          "real {real_ms_per_step} ms/step, val_bpb {val_bpb}, wall {real_seconds:.0f} s".format(**r))
for f in rec["findings"]:
    print(f"  {f['severity']:7s} {f['rule']}: {f['message'][:300]}")
EOF
}

run replay
run raw --no-match-steps
run steps --no-replay-clock --env ITERATIONS=50
cp "$OUT"/replay/seed_*/run_home/pgolf-clock/clock_rank0.json "$OUT/replay_clock_rank0.json" 2>/dev/null
echo "expected replay stop step: $($PY -c "print(int($CAP * 1000 // 43.54427)+1)")"
