"""Training: the seeded, resumable loop, the `train` stage, checkpoints and loading trained models.

Modules: `options` (what `fit` is told and returns), `optim` (seeding, device, class weights, loss,
AdamW, schedule, early stopping), `epoch` (one training and one validation pass), `resume` (checkpoint
state and when a run may continue), `loop` (`fit`), `checkpoint`, `stage`, `load`.

May import: `dataset`, `ingest`, `store`, `models` and the layers below; not the CLI or config.
"""
