#!/usr/bin/env bash
# CinC 2017 at scale (issue 17): the STFT-CRNN and the single-lead 1D residual CNN (`cnn1d`, the
# resnet1d family with one input lead) on all 7,500 shared records, one split shared by both.
# Configuration: params.yaml + scripts/cinc2017.args (real-data folders, the cnn1d model, epochs), then
# the search's winner as written back to experiments/cinc2017/params.yaml by `dvc exp apply`: its knobs
# (lr, width, class-weight power, augmentation, sampler) configure the model it names, trained for
# FINAL_EPOCHS (default 12; the search ran 6). Extra `--set` arguments may follow the model names after `--`. Training runs under `nice -n 10`
# with OMP_NUM_THREADS=1 (the machine is shared) and resumes after an interruption.
# After evaluation, each model's C kernels are checked layer by layer against PyTorch on its test records
# (parity_shared/<model>/report.md; PARITY=0 skips it).
# Usage: scripts/cinc2017_models.sh [model ...] [-- --set key=value ...]   (default: crnn cnn1d)
# SHARED (default ../shared/data, or $ECGPIPE_SHARED_DATA) is where the shared records are;
# BIN (default .venv/bin) where ecgpipe is.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SHARED=${ECGPIPE_SHARED_DATA:-${SHARED:-../shared/data}}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mapfile -t ARGS < <(sed "s|@SHARED@|$SHARED|; s/ /\n/" scripts/cinc2017.args)
source scripts/cinc2017_knobs.sh
read -r WINNER LR W CWP AUG SAMPLER < <("$BIN/python" -c '
import yaml
p = yaml.safe_load(open("experiments/cinc2017/params.yaml"))
aug = {False: "off", True: "on"}.get(p["augment"], p["augment"])  # YAML 1.1 reads a bare off as false
print(p["model"], p["lr"], p["width"], p["class_weight_power"], aug, p["sampler"])')
knob_args "$WINNER" "$LR" "$W" "$CWP" "$AUG" "$SAMPLER" "${FINAL_EPOCHS:-12}"
MODELS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do MODELS+=("$1"); shift; done
[ $# -gt 0 ] && shift
ARGS+=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(crnn cnn1d)
if [ ! -f data/shards_shared/lead1_af/manifest.json ]; then
  nice -n 10 "$BIN/ecgpipe" ingest --profile lead1_af "${ARGS[@]}"
fi
make -C ckernels all >/dev/null   # the C kernels' parity on real test records follows each evaluation
for m in "${MODELS[@]}"; do
  "$BIN/ecgpipe" split "$m" "${ARGS[@]}"
  nice -n 10 "$BIN/ecgpipe" train "$m" "${ARGS[@]}"
  nice -n 10 "$BIN/ecgpipe" evaluate "$m" "${ARGS[@]}"
  if [ "${PARITY:-1}" = 1 ]; then
    "$BIN/ecgpipe" cexport "$m" "${ARGS[@]}"
    nice -n 10 "$BIN/ecgpipe" parity "$m" "${ARGS[@]}"
  fi
done
