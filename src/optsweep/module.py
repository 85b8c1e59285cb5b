"""The LightningModules: one base that trains any network with any optimizer/scheduler config,
and one subclass per task family for its loss and metrics."""

import logging
import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torchmetrics import Accuracy, MeanMetric, MetricCollection
from torchmetrics.text import CharErrorRate

from optsweep import schedule_free
from optsweep.adam_to_sgd import switch_if_due
from optsweep.data.ocr_text import Charset
from optsweep.evaluations import BatchEvaluations
from optsweep.lr_free import step_size
from optsweep.optim import build_optimizer, build_scheduler, describe_groups
from optsweep.rng import collect_rng_states, restore_rng_states
from optsweep.warmup import Warmup, lr_multiplied

log = logging.getLogger(__name__)


class TaskModule(pl.LightningModule):
    """Built from the whole resolved config as a plain dict, which is also what is saved as
    hyperparameters: a checkpoint alone can rebuild its network (see predict.py)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.net = self.build_net(config)
        # Mean loss as optimizer comparisons define it: sum of batch losses / number of
        # batches, unweighted (MeanMetric without weights), unlike Lightning's epoch mean,
        # which weights by batch size.
        self.train_mean_loss = MeanMetric()
        self.mean_loss_logged = False  # in this epoch (see training_step)
        self.evaluations = BatchEvaluations()  # SAM and L-BFGS evaluate a batch more than once
        self.warmup = Warmup(steps=0, start_factor=1.0)  # set for the run in on_train_start
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        metrics = self.build_metrics()
        self.val_metrics, self.test_metrics = metrics.clone("val/"), metrics.clone("test/")

    # --- what a task family defines -------------------------------------------------------
    METRICS: tuple[str, ...] = ()  # the keys of build_metrics(), logged as val/<key>

    @classmethod
    def epoch_metrics(cls) -> tuple[str, ...]:
        """The metrics in every epoch's history row: what a sweep can be ranked by."""
        return ("train/mean_loss", "train/lr", "val/loss", *(f"val/{m}" for m in cls.METRICS))

    def build_net(self, config: dict) -> nn.Module:
        raise NotImplementedError

    def build_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, batch) -> torch.Tensor:
        raise NotImplementedError

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor, batch) -> None:
        raise NotImplementedError

    # --- shared training logic -------------------------------------------------------------
    def _net_from_config(self, **data_facts) -> nn.Module:
        model_cfg = {k: v for k, v in self.config["model"].items() if k != "task"}
        return instantiate(model_cfg, _convert_="all", **data_facts)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def batch_loss(self, batch) -> torch.Tensor:
        return self.loss(self(batch[0]), batch)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self.evaluations.new_batch(batch, batch_idx, self.trainer.accumulate_grad_batches)
        # Schedule-free optimizers train at y and evaluate x (schedule_free.py): y only while
        # training batches run; validation, test, predict and the weights fit ends with are x.
        schedule_free.train_mode(self.trainer.optimizers)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, first = self.evaluations.evaluate(self, batch)
        if first:  # the loss at the weights the step starts from (see evaluations.py)
            self.train_mean_loss.update(loss.detach())
            self.log("train/loss", loss, prog_bar=True)
            if not self.mean_loss_logged:
                # A logged Metric is kept by reference and computed at the epoch's end, over
                # every update: once an epoch is enough. A self.log call costs 0.4-0.7 ms (it
                # moves the metric's states to the device each time), a GPU step a few ms.
                self.log("train/mean_loss", self.train_mean_loss, on_step=False, on_epoch=True)
                self.mean_loss_logged = True
        return loss

    # The LR range test (mode=lr_find) drives the LR itself: no warmup, no optimizer switch.
    def on_train_start(self) -> None:
        if self.config["mode"] == "train":
            batches = self.trainer.num_training_batches / self.trainer.accumulate_grad_batches
            self.warmup = Warmup.from_config(self.config, math.ceil(batches))

    def on_train_epoch_start(self) -> None:
        # Lightning resets its results (and the metric) after each epoch; a key counts again
        # only once it is logged again.
        self.mean_loss_logged = False
        if self.config["mode"] == "train":
            switch_if_due(self.trainer)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        # Warmup scales the scheduled LR only for the step itself (see warmup.py). The LR
        # logged is the one this step used (d * lr for an LR-free optimizer, lr_free.py), so
        # metrics.csv shows what the model got.
        with lr_multiplied(optimizer, self.warmup.factor(self.trainer.global_step)):
            self.log("train/lr", step_size(optimizer), prog_bar=True)
            optimizer.step(closure=optimizer_closure)

    def on_validation_model_eval(self) -> None:
        super().on_validation_model_eval()
        schedule_free.eval_mode(self.trainer.optimizers)

    def on_test_model_eval(self) -> None:
        super().on_test_model_eval()
        schedule_free.eval_mode(self.trainer.optimizers)

    def on_predict_model_eval(self) -> None:
        super().on_predict_model_eval()
        schedule_free.eval_mode(self.trainer.optimizers)

    def on_train_end(self) -> None:
        schedule_free.eval_mode(self.trainer.optimizers)

    def _evaluate(self, batch, stage: str) -> None:
        outputs = self(batch[0])
        getattr(self, f"{stage}_loss").update(self.loss(outputs, batch))
        self.update_metrics(getattr(self, f"{stage}_metrics"), outputs, batch)

    def _log_evaluation(self, stage: str) -> None:
        # Once per pass, as train/mean_loss: Lightning computes the metrics after this hook, so
        # callbacks read this pass's values from on_validation_end on (the checkpoint, guards,
        # pruning, result.json); a callback's on_validation_epoch_end, run before this, would
        # still see the previous pass's.
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True)
        self.log_dict(getattr(self, f"{stage}_metrics"), prog_bar=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def configure_optimizers(self):
        optimizer = build_optimizer(self.config["optimizer"], self, self.config["decay_1d_params"])
        for group in describe_groups(optimizer):
            log.info(
                "param group %s: %d tensors, %d parameters, weight_decay=%s",
                *group.values(),
            )
        scheduler = build_scheduler(self.config["scheduler"], optimizer, self.trainer)
        return {"optimizer": optimizer, **({"lr_scheduler": scheduler} if scheduler else {})}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])


class OCRModule(TaskModule):
    """CTC over the network's per-column class scores; word accuracy and CER on greedy decoding."""

    METRICS = ("word_acc", "cer")

    def build_net(self, config: dict) -> nn.Module:
        self.charset = Charset(config["data"]["charset"])
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)
        return self._net_from_config(
            num_classes=self.charset.num_classes, height=config["data"]["height"]
        )

    def build_metrics(self) -> MetricCollection:
        return MetricCollection({"word_acc": MeanMetric(), "cer": CharErrorRate()})

    def loss(self, outputs: torch.Tensor, batch) -> torch.Tensor:
        _, targets, lengths = batch
        log_probs = outputs.log_softmax(-1).transpose(0, 1)  # (T, N, C) as CTCLoss wants
        frames = torch.full((outputs.shape[0],), outputs.shape[1], dtype=torch.long)
        return self.ctc(log_probs, targets, frames, lengths)

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor, batch) -> None:
        predicted = self.charset.greedy_decode(outputs)
        truth = self.charset.decode_targets(batch[1], batch[2])
        exact = torch.tensor(
            [p == t for p, t in zip(predicted, truth, strict=True)], device=outputs.device
        )
        metrics[f"{metrics.prefix}word_acc"].update(exact.float())
        metrics[f"{metrics.prefix}cer"].update(predicted, truth)


class ClassifierModule(TaskModule):
    METRICS = ("acc",)

    def build_net(self, config: dict) -> nn.Module:
        return self._net_from_config(num_classes=len(config["data"]["classes"]))

    def build_metrics(self) -> MetricCollection:
        num_classes = len(self.config["data"]["classes"])
        return MetricCollection({"acc": Accuracy(task="multiclass", num_classes=num_classes)})

    def loss(self, outputs: torch.Tensor, batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch[1])

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor, batch) -> None:
        metrics[f"{metrics.prefix}acc"].update(outputs, batch[1])


MODULES = {"ocr": OCRModule, "classification": ClassifierModule}
