"""Training: optimizers, losses and schedules from the recipe, and one fold's fit with
per-epoch checkpoints so that ``gaitrun resume`` continues mid-fold."""
