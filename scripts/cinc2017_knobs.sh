# Sourced by cinc2017_experiment.sh and cinc2017_models.sh: the CinC 2017 search's knobs as `ecgpipe --set`
# overrides, so a search run and the final training of its winner configure the model the same way.
# knob_args MODEL LR WIDTH CLASS_WEIGHT_POWER AUGMENT(off|on) SAMPLER EPOCHS  appends to the ARGS array.
knob_args() {
  local model=$1 lr=$2 w=$3 cwp=$4 aug=$5 sampler=$6 epochs=$7
  local m=train.models.$model
  ARGS+=(--set "$m.lr=$lr" --set "$m.class_weight_power=$cwp" --set "$m.class_weights=true"
         --set "$m.sampler=$sampler" --set "$m.balance_power=0.5" --set "$m.epochs=$epochs")
  case "$model" in
    cnn1d) ARGS+=(--set "$m.model.widths=[$w, $((2 * w)), $((4 * w)), $((8 * w))]") ;;
    crnn) ARGS+=(--set "$m.model.conv_channels=[$w, $((2 * w)), $((4 * w))]") ;;
    *) echo "unknown model $model (cnn1d | crnn)" >&2; return 2 ;;
  esac
  case "$aug" in
    off) ;;
    on) ARGS+=(--set "$m.augment={crop_min: 0.8, shift_max: 0.1, scale: 0.1, noise_mv: 0.02}") ;;
    *) echo "augment must be off or on, got $aug" >&2; return 2 ;;
  esac
}
