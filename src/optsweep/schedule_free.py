"""Schedule-Free optimizers (Defazio et al., 2024; optimizer=schedulefree_adamw|schedulefree_sgd)
train at one point and evaluate another: the parameters hold y (the gradient is taken there) in
train mode and x (the average of the iterates, what the method promises) in eval mode, and
`optimizer.train()` / `optimizer.eval()` move them from one to the other in place.

Train mode here lasts only while training batches run: the first batch of an epoch (or the
first after a mid-epoch validation) switches to y, and validation, test and predict, every
checkpoint ModelCheckpoint writes (model_checkpoint.py) and the end of fit switch back to x. So
val/* and test/* are of x, every .ckpt holds x (with train_mode false in the optimizer state),
and the weights fit leaves in the module are x.

The switch is a floating-point interpolation, x -> y -> x is not the identity to the last bit,
so a resume is bit-exact only if the same switches happen in the same places: an epoch's
checkpoint is written in eval mode, after the epoch's validation, and the next epoch starts with
train() from the x and z in that checkpoint, in an uninterrupted run and in a resumed one alike.

The package's Closure variants need no switching (x between steps, y only inside `step`), but
with gradient accumulation Lightning runs every batch but the last outside the closure, whose
gradients would then be taken at x; the Reference variants switch by copying but keep x and y as
two more copies of the model and print on every switch. Hence the plain ones.
"""

import torch


def _schedule_free(optimizers) -> list[torch.optim.Optimizer]:
    # torch's optimizers have no train()/eval(); the schedule-free ones (and wrappers that pass
    # them through) do.
    return [o for o in optimizers if callable(getattr(o, "train", None)) and hasattr(o, "eval")]


def train_mode(optimizers) -> None:
    """Parameters to y, for a training step (a no-op where they are there already)."""
    for optimizer in _schedule_free(optimizers):
        optimizer.train()


def eval_mode(optimizers) -> None:
    """Parameters to x, for evaluating or saving them (a no-op where they are there already)."""
    for optimizer in _schedule_free(optimizers):
        optimizer.eval()
