#!/usr/bin/env bash
# One run of the CinC 2017 search (the stage of experiments/cinc2017/dvc.yaml, its own DVC project):
# split, train and evaluate MODEL on the shared store with the given knobs; outputs under
# experiments/cinc2017/out/{models,live,eval}. Selection uses the validation figures only
# (out/live/<model>/metrics.json: best_val_f1_selected); out/eval holds the test figures.
# Usage: cinc2017_experiment.sh MODEL LR WIDTH CLASS_WEIGHT_POWER AUGMENT(off|on) SAMPLER EPOCHS
# Environment: STORE (the lead1_af store, default data/shards_shared), THREADS (torch threads, default 1),
# ECGPIPE_SHARED_DATA, BIN (where ecgpipe is; absolute when run from a DVC queue).
set -euo pipefail
[ $# -eq 7 ] || { echo "usage: $0 MODEL LR WIDTH CLASS_WEIGHT_POWER AUGMENT SAMPLER EPOCHS" >&2; exit 2; }
MODEL=$1 LR=$2 W=$3 CWP=$4 AUG=$5 SAMPLER=$6 EPOCHS=$7
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SHARED=${ECGPIPE_SHARED_DATA:-${SHARED:-../shared/data}}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=experiments/cinc2017/out
mapfile -t ARGS < <(sed "s|@SHARED@|$SHARED|; s/ /\n/" scripts/cinc2017.args)
M=train.models.$MODEL
# The shard store is read-only here: queued runs (each in DVC's own temporary copy of the repository)
# read the store named by STORE, an absolute path to the one ingested beside the main checkout.
ARGS+=(--set "ingest.store=${STORE:-data/shards_shared}")
ARGS+=(--set "train.out_dir=$OUT/models" --set "train.live_dir=$OUT/live" --set "evaluate.out_dir=$OUT/eval"
       --set "$M.threads=${THREADS:-1}")   # queued runs share the cores: one torch thread each by default
source scripts/cinc2017_knobs.sh
knob_args "$MODEL" "$LR" "$W" "$CWP" "$AUG" "$SAMPLER" "$EPOCHS"
"$BIN/ecgpipe" split "$MODEL" "${ARGS[@]}"
nice -n 10 "$BIN/ecgpipe" train "$MODEL" "${ARGS[@]}"
nice -n 10 "$BIN/ecgpipe" evaluate "$MODEL" "${ARGS[@]}"
