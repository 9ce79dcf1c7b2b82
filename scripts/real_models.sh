#!/usr/bin/env bash
# The model families on the real public records in ../shared/data (README "Results on real records").
# Same params.yaml as the demo pipeline; only the store and output folders differ (real-models.args):
# data/shards_shared, data/splits_shared, models_shared, dvclive_shared, eval_shared, export_shared,
# parity_shared. Usage: scripts/real_models.sh [model ...]   (default: autoencoder crnn resnet; ONNX export
# for resnet + autoencoder; C-kernel export and parity for all three). SKIP_TRAIN=1 reuses trained models.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mapfile -t ARGS < <(sed 's/ /\n/' scripts/real-models.args)
if [ ! -f data/shards_shared/lead1_af/manifest.json ]; then make ingest-shared; fi
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(autoencoder crnn resnet)
make -C ckernels all test
for m in "${MODELS[@]}"; do
  if [ -z "${SKIP_TRAIN:-}" ]; then
    "$BIN/ecgpipe" split "$m" "${ARGS[@]}"
    "$BIN/ecgpipe" train "$m" "${ARGS[@]}"
    "$BIN/ecgpipe" evaluate "$m" "${ARGS[@]}"
    case "$m" in resnet|autoencoder) "$BIN/ecgpipe" export "$m" "${ARGS[@]}" ;; esac
  fi
  "$BIN/ecgpipe" cexport "$m" "${ARGS[@]}"
  "$BIN/ecgpipe" parity "$m" "${ARGS[@]}"
done
