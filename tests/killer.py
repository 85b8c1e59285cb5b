"""Callbacks (and a logger) the tests inject through the config, e.g.
`+callbacks.killer._target_=killer.KillAtEpoch`: faults at known points, and probes."""

import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger


def _chosen(pl_module: pl.LightningModule, lr: float | None) -> bool:
    return lr is None or pl_module.config["lr"] == lr


class KillAtEpoch(pl.Callback):
    """SIGKILLs its own process at the start of `epoch` (or, given `batch`, at the end of that
    batch of `epoch`, before Lightning logs its row): a real crash at a known point. It fires
    only in a fresh run, so the resumed run with the same overrides goes on; in a sweep, only
    in the trial with learning rate `lr` (all of them when None)."""

    def __init__(self, epoch: int, lr: float | None = None, batch: int | None = None) -> None:
        self.epoch, self.lr, self.batch = epoch, lr, batch

    def _due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        fresh = trainer.ckpt_path is None
        return trainer.current_epoch == self.epoch and fresh and _chosen(pl_module, self.lr)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.batch is None and self._due(trainer, pl_module):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == self.batch and self._due(trainer, pl_module):
            os.kill(os.getpid(), signal.SIGKILL)


class KillAfterCheckpoint(Logger):
    """A logger that SIGKILLs its process as soon as last.ckpt holds `epoch`, in that epoch:
    the checkpoint is on disk, and Lightning has not yet logged the epoch's train metrics (it
    does so after ModelCheckpoint's save at the train epoch end). Loggers hear of every save,
    callbacks do not. A run resumed from that checkpoint goes on: it trains later epochs."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch
        self.current_epoch = None  # of the last row logged: Lightning adds `epoch` to each

    @property
    def name(self) -> str:
        return "killer"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.current_epoch = metrics.get("epoch", self.current_epoch)

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        last = checkpoint_callback.last_model_path
        if self.current_epoch != self.epoch or not last:
            return
        if torch.load(last, map_location="cpu", weights_only=True)["epoch"] == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class KillDuringSave(pl.Callback):
    """SIGKILLs its own process while the `save`-th checkpoint of `epoch` is being written (in
    a fresh run): with save=2 at an epoch that improves, last.ckpt, written after the new best.

    That checkpoint gets `padding_mb` of zeros, so writing it takes long enough to be caught:
    a thread watches $TMPDIR and the checkpoints dir for the file being written (any name but
    *.ckpt: Lightning's temp file in $TMPDIR, or ours beside the target) and kills the process
    as soon as that file holds bytes, i.e. in the middle of the write."""

    def __init__(self, epoch: int, save: int = 2, padding_mb: int = 64) -> None:
        self.epoch, self.save, self.padding_mb = epoch, save, padding_mb
        self.saves = 0

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        if trainer.ckpt_path is not None or trainer.current_epoch != self.epoch:
            return
        self.saves += 1
        if self.saves == self.save:
            checkpoint["padding"] = torch.zeros(self.padding_mb * 2**20 // 4)
            watched = [Path(tempfile.gettempdir()), Path(trainer.checkpoint_callback.dirpath)]
            threading.Thread(target=_kill_once_written, args=(watched,), daemon=True).start()


def _kill_once_written(watched: list[Path]) -> None:
    while True:
        for path in (p for folder in watched for p in folder.iterdir() if p.suffix != ".ckpt"):
            try:
                written = path.is_file() and path.stat().st_size > 0
            except FileNotFoundError:  # renamed into place meanwhile
                continue
            if written:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0005)


class RaiseAtEpoch(pl.Callback):
    """Raises inside training at the start of `epoch`: a trial that crashes (in a sweep, only
    the one with learning rate `lr`, all of them when None)."""

    def __init__(self, epoch: int, lr: float | None = None) -> None:
        self.epoch, self.lr = epoch, lr

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and _chosen(pl_module, self.lr):
            raise RuntimeError(f"boom at epoch {self.epoch}\nsecond line of the error")


class OptimizerStateProbe(pl.Callback):
    """Records the optimizer state Lightning hands to training, right after any restore."""

    seen: list[dict] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = trainer.optimizers[0].state_dict()["state"]
        # Cloned: the optimizer updates its state tensors in place as training goes on.
        OptimizerStateProbe.seen.append(
            {i: {k: v.clone() for k, v in s.items()} for i, s in state.items()}
        )


class PauseAtEpoch(pl.Callback):
    """Waits at the start of `epoch` until the file `until` exists: a run that is surely still
    training while the test does something beside it. Like KillAtEpoch, only in a fresh run,
    and in a sweep only in the trial with learning rate `lr` (all of them when None)."""

    def __init__(self, epoch: int, until: str, lr: float | None = None) -> None:
        self.epoch, self.until, self.lr = epoch, Path(until), lr

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fresh = trainer.ckpt_path is None
        if trainer.current_epoch == self.epoch and fresh and _chosen(pl_module, self.lr):
            while not self.until.exists():
                time.sleep(0.05)


class Rendezvous(pl.Callback):
    """Each run announces itself in the folder `dir` as its training starts, then waits there
    until `parties` runs have: in a sweep, trials that surely run at the same time, whatever
    the machine's load (tiny trials otherwise may finish before the next one starts)."""

    def __init__(self, dir: str, parties: int) -> None:
        self.dir, self.parties = Path(dir), parties

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / str(os.getpid())).touch()
        while len(list(self.dir.iterdir())) < self.parties:
            time.sleep(0.05)


class ProcessProbe(pl.Callback):
    """Writes `process.json` into the run dir as training starts: how its process came to be
    (its parent, that one's parent, and the command line it was started with)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        parent = os.getppid()
        stat = Path(f"/proc/{parent}/stat").read_text()
        process = {
            "parent": parent,
            "grandparent": int(stat.rsplit(")", 1)[1].split()[1]),
            "cmdline": Path("/proc/self/cmdline").read_text().split("\0")[:-1],
        }
        (Path(trainer.default_root_dir) / "process.json").write_text(json.dumps(process))


class AveragedWeightsProbe(pl.Callback):
    """For a schedule-free optimizer, in a fit in the test's own process: at each epoch's last
    training step the weights it trained at (y, the parameters) and the average it promises (x,
    from its state: y = (1 - beta) z + beta x, so x = (y - (1 - beta) z) / beta); the LR each
    step used (its `scheduled_lr`); the weights of every checkpoint as Lightning built it; and
    the weights the fit ends with."""

    trained: list[dict] = []
    averaged: list[dict] = []
    step_lrs: list[float] = []
    saved: list[tuple[int, dict]] = []
    at_end: dict = {}

    @classmethod
    def reset(cls) -> None:
        cls.trained, cls.averaged, cls.step_lrs, cls.saved, cls.at_end = [], [], [], [], {}

    @staticmethod
    def _parameters(pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in pl_module.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        optimizer = trainer.optimizers[0]
        AveragedWeightsProbe.step_lrs.append(optimizer.param_groups[0]["scheduled_lr"])
        if batch_idx + 1 < trainer.num_training_batches:
            return
        y = self._parameters(pl_module)
        z = {name: optimizer.state[p]["z"] for name, p in pl_module.named_parameters()}
        group = optimizer.param_groups[0]
        beta = group["momentum"] if "momentum" in group else group["betas"][0]
        AveragedWeightsProbe.trained.append(y)
        AveragedWeightsProbe.averaged.append(
            {name: (y[name] - (1 - beta) * z[name]) / beta for name in y}
        )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        weights = {name: checkpoint["state_dict"][name].clone() for name in self.trained[-1]}
        AveragedWeightsProbe.saved.append((trainer.current_epoch, weights))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        AveragedWeightsProbe.at_end = self._parameters(pl_module)


class StepSizeProbe(pl.Callback):
    """Writes `step_sizes.json` into the run dir: the `lr` and, where the optimizer keeps one,
    the `d` of each optimizer step, read right before the optimizer uses them."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        group = optimizer.param_groups[0]
        self.steps.append({"step": trainer.global_step, "lr": group["lr"], "d": group.get("d")})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = Path(trainer.default_root_dir) / "step_sizes.json"
        path.write_text(json.dumps(self.steps))


class EvaluationProbe(pl.Callback):
    """Records every training batch: the batch, the forward passes and the losses
    backpropagated while it was the current one, and for each loss evaluation that ended in an
    optimizer closure the weights it was taken at and the gradient it left (Lightning calls
    on_before_optimizer_step after each closure call); then the weights after the batch."""

    config: dict = {}  # of the last run probed: rebuilds its module
    batches: list[dict] = []

    def __init__(self) -> None:
        EvaluationProbe.batches = []

    @classmethod
    def module_at(cls, weights: dict[str, torch.Tensor]) -> pl.LightningModule:
        """The probed run's module, fresh (BatchNorm statistics as at the start), with these
        weights: to recompute by hand what the run computed."""
        from optsweep.module import MODULES

        module = MODULES[cls.config["data"]["task"]](cls.config)
        with torch.no_grad():
            for name, param in module.named_parameters():
                param.copy_(weights[name])
        return module

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        EvaluationProbe.config = pl_module.config
        pl_module.net.register_forward_pre_hook(self._count_forward)
        self.module = pl_module

    def _count_forward(self, net, inputs) -> None:
        if self.module.training and self.batches and "after" not in self.batches[-1]:
            self.batches[-1]["forwards"] += 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.batches.append({"batch": batch, "forwards": 0, "losses": [], "evaluations": []})

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self.batches[-1]["losses"].append(loss.item())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        params = dict(pl_module.named_parameters())
        self.batches[-1]["evaluations"].append(
            {
                "weights": {k: p.detach().clone() for k, p in params.items()},
                "grads": {k: p.grad.clone() for k, p in params.items()},
            }
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        state = pl_module.state_dict()  # weights and BatchNorm's running statistics
        self.batches[-1]["after"] = {k: v.detach().clone() for k, v in state.items()}
