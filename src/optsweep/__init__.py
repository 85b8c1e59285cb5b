"""optsweep: find the best optimizer, learning rate and LR schedule for a model."""
