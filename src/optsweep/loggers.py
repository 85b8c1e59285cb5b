"""Lightning's loggers, made to continue a run in place: after any number of kills and
resumes, metrics.csv, TensorBoard and MLflow hold the run's whole history, each row once.

Left to themselves, Lightning's loggers start over in a run dir they find used: CSVLogger
deletes metrics.csv, TensorBoardLogger writes a second history from the resumed step on next
to the first, MLFlowLogger opens a new MLflow run. Here, the `ContinueLogs` callback tells each
logger, before anything is logged, the global step of the checkpoint the fit restored (0 for
a fresh fit): what was logged before it stays, what an earlier process logged from it on goes,
because the fit logs it again. The conf/logger/*.yaml files select these classes.
"""

import csv
import json
import os
from pathlib import Path

import pytorch_lightning as pl
from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning import loggers
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.trainer.states import TrainerFn

from optsweep.durable import fsync_path, replaced_atomically, write_json_atomic

MLFLOW_RUN_FILE = "mlflow_run.json"


class ContinuableLogger:
    """A logger that can continue the history of its run from a given step."""

    def continue_from(self, step: int) -> None:
        """Drop what earlier processes logged at `step` or later; keep the rest."""
        raise NotImplementedError

    def before_checkpoint(self) -> None:
        """Put every row logged so far on disk: a checkpoint is about to be written."""
        self.save()


class ContinueLogs(pl.Callback):
    """Keeps the loggers' history in step with the checkpoints a fit resumes from.

    Lightning restores a checkpoint before the fit logs anything, so the cut happens then. It
    is keyed on the checkpoint Lightning actually loads, whichever file that is.
    """

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        # test(ckpt_path=best) loads a checkpoint too, but continues nothing.
        if trainer.state.fn == TrainerFn.FITTING:
            _continue_loggers(trainer, checkpoint["global_step"])

    def on_fit_start(self, trainer: pl.Trainer, pl_module) -> None:
        # A fresh fit in a used dir (a sweep trial started again) logs everything anew.
        if trainer.ckpt_path is None:
            _continue_loggers(trainer, 0)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        # At a train epoch end ModelCheckpoint saves before Lightning hands the epoch's train
        # metrics (train/mean_loss) to the loggers (FitLoop.on_advance_end), so a kill right
        # after the save would lose that row for good: the resumed fit starts at the next
        # epoch. Log them now, with the step Lightning gives them; its own call then finds
        # them logged (the results are reset) and logs nothing.
        progress = trainer.fit_loop.epoch_progress.current
        if trainer.state.fn == TrainerFn.FITTING and progress.processed > progress.completed:
            epoch_loop = trainer.fit_loop.epoch_loop
            epoch_loop._batches_that_stepped -= 1
            trainer._logger_connector.update_train_epoch_metrics()
            epoch_loop._batches_that_stepped += 1
        for logger in trainer.loggers:
            if isinstance(logger, ContinuableLogger):
                logger.before_checkpoint()
            else:
                logger.save()


def _continue_loggers(trainer: pl.Trainer, step: int) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, ContinuableLogger):
            logger.continue_from(step)


# --- metrics.csv -------------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """The header and rows of a metrics.csv (none if there is no file)."""
    if not path.is_file():
        return [], []
    text = path.read_text()
    if not text.endswith("\n"):  # a row cut short by a kill mid-append: the newest one
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines())
    return list(reader.fieldnames or []), list(reader)


def _write_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    """Replace the file whole: a kill mid-write leaves the old file, never a truncated one."""
    with replaced_atomically(path) as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in header} for row in rows)


class _MetricsFile(ExperimentWriter):
    """Lightning's metrics.csv writer, minus the deletion when it opens a used dir, with
    atomic rewrites (Lightning rewrites the file in place when a new column appears)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        # Rows appended line up with the file's columns (until keep_before cuts it).
        self.metrics_keys = _read_rows(Path(self.metrics_file_path))[0]

    def _check_log_dir_exists(self) -> None:
        pass  # Lightning deletes metrics.csv here; keep_before keeps what is not logged again

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        _write_rows(path, fieldnames, _read_rows(path)[1])

    def keep_before(self, step: int) -> None:
        path = Path(self.metrics_file_path)
        kept = [row for row in _read_rows(path)[1] if int(row["step"]) < step]
        # The columns of the rows kept, as Lightning would have written them: sorted.
        self.metrics_keys = sorted({k for row in kept for k, v in row.items() if v != ""})
        if kept:
            _write_rows(path, self.metrics_keys, kept)
        else:
            path.unlink(missing_ok=True)

    def fsync(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            fsync_path(Path(self.metrics_file_path))


class CSVLogger(ContinuableLogger, loggers.CSVLogger):
    @property
    def experiment(self) -> _MetricsFile:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _MetricsFile(log_dir=self.log_dir)
        return self._experiment

    def continue_from(self, step: int) -> None:
        self.experiment.keep_before(step)

    def before_checkpoint(self) -> None:
        self.save()
        self.experiment.fsync()


# --- TensorBoard -------------------------------------------------------------------------


class TensorBoardLogger(ContinuableLogger, loggers.TensorBoardLogger):
    def continue_from(self, step: int) -> None:
        # SummaryWriter's purge_step: its next event file opens with a restart marker at
        # `step`, and TensorBoard then hides the earlier events at that step or later. The
        # writer Lightning opened at setup, before the checkpoint was read, is closed; it
        # reopens (with a new file) at the next event.
        writer = self.experiment
        writer.close()
        writer.purge_step = step


# --- MLflow ------------------------------------------------------------------------------


class MLFlowLogger(ContinuableLogger, loggers.MLFlowLogger):
    """Continues the MLflow run of its run dir, so a trial is one MLflow run however often it
    was resumed. The run id is kept in <run dir>/mlflow_run.json (with the store it lives in),
    written when the run is created: the logger needs it at setup, before any checkpoint is
    read, and it stays valid whichever checkpoint the fit resumes from.

    MLflow cannot delete a logged value. So instead of dropping what a killed process logged
    past the checkpoint, the resumed run does not log those (metric, step) pairs again: they
    came from the same state (on CPU, the same values bit for bit).
    """

    def __init__(
        self, run_dir: str, tracking_uri: str, ckpt_path: str | None = None, **kwargs
    ) -> None:
        self._run_file = Path(run_dir) / MLFLOW_RUN_FILE
        self._store = tracking_uri
        earlier = self._run_of_this_dir(tracking_uri)
        # A fit from a checkpoint continues the dir's MLflow run; a fresh fit in a used dir (a
        # trial killed before its first checkpoint) starts a new one and deletes the old one,
        # whose values came from weights that are gone.
        run_id = earlier if ckpt_path else None
        self._replaces = None if ckpt_path else earlier
        super().__init__(tracking_uri=tracking_uri, run_id=run_id, **kwargs)
        self._continued = run_id is not None
        self._recorded = False
        self._logged: set[tuple[str, int]] = set()  # (key, step) logged at or after the cut

    def _run_of_this_dir(self, tracking_uri: str) -> str | None:
        try:
            saved = json.loads(self._run_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if saved.get("tracking_uri") != tracking_uri:
            return None
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            run = MlflowClient(tracking_uri).get_run(saved["run_id"])
        except MlflowException:  # the store was deleted or replaced since
            return None
        return run.info.run_id if run.info.lifecycle_stage == "active" else None

    @property
    def experiment(self):
        client = super().experiment
        if not self._recorded:
            self._recorded = True  # first, as run_id calls this property
            if self._continued:  # killed, or failed: it runs again
                client.update_run(self.run_id, status="RUNNING")
            else:
                payload = {"tracking_uri": self._store, "run_id": self.run_id}
                write_json_atomic(self._run_file, payload)
                if self._replaces:
                    client.delete_run(self._replaces)
        return client

    def log_hyperparams(self, params) -> None:
        # MLflow refuses to change a param, and a resume differs in one at least (ckpt_path):
        # a continued run keeps the values it was started with.
        if self._continued:
            logged = self.experiment.get_run(self.run_id).data.params
            params = _flatten_dict(_convert_params(params))
            params = {k: v for k, v in params.items() if k not in logged}
        super().log_hyperparams(params)

    def continue_from(self, step: int) -> None:
        if not self._continued:
            return
        client, run_id = self.experiment, self.run_id
        self._logged = {
            (metric.key, metric.step)
            for key in client.get_run(run_id).data.metrics
            for metric in client.get_metric_history(run_id, key)
            if metric.step >= step
        }

    def log_metrics(self, metrics, step: int | None = None) -> None:
        # Lightning adds `epoch` to every row, so several rows share (epoch, step): a row is
        # known by its other metrics.
        keys = [k for k in metrics if k != "epoch"]
        if keys and all((k, step or 0) in self._logged for k in keys):
            return
        super().log_metrics(metrics, step)
