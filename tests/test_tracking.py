"""Tracking: logger=tensorboard and logger=mlflow (open what each wrote and find the run's
metrics there; both keep metrics.csv too, which the sweep report reads), the whole history
in each after kills and resumes, and the config tree a run prints and keeps."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import SHARED_OCR, TINY_OCR, metrics_rows, run_cli, trained

EPOCHS = 2


def test_tensorboard_has_the_metrics_per_epoch(tmp_path_factory):
    run = trained(SHARED_OCR, tmp_path_factory)  # logger=tensorboard, 2 epochs
    events = EventAccumulator(str(run.dir / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/mean_loss", "val/loss", "val/word_acc", "train/lr"} <= set(scalars)
    assert len(events.Scalars("val/loss")) == len(run.result["history"]) == EPOCHS
    assert (run.dir / "metrics.csv").is_file()


@pytest.mark.slow
def test_mlflow_has_every_trial_of_a_sweep_as_runs_of_one_experiment(tmp_path):
    from mlflow.tracking import MlflowClient

    sweep = tmp_path / "my-sweep"
    run_cli(
        ["-m", "logger=mlflow", "lr=1e-3,2e-3", *TINY_OCR, f"epochs={EPOCHS}", "test=false"]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    experiment = client.get_experiment_by_name("my-sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(float(r.data.params["config/lr"]) for r in runs) == [1e-3, 2e-3]
    for run in runs:
        assert run.data.params["config/optimizer/_target_"] == "torch.optim.Adam"
        history = client.get_metric_history(run.info.run_id, "val/loss")
        assert len(history) == EPOCHS
        assert "train/mean_loss" in run.data.metrics
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert any("val_loss=" in path for path in artifacts), artifacts  # the best checkpoint


def test_a_run_prints_its_config_tree_and_keeps_it(tmp_path_factory):
    run = trained(SHARED_OCR, tmp_path_factory)  # lr=5e-5
    saved = (run.dir / "config_tree.txt").read_text()
    expected = ("├── knobs", "├── optimizer", "_target_: torch.optim.Adam", "effective_lr: 5.0e-05")
    for text in expected:
        assert text in run.printed and text in saved, text


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def mlflow_histories(outputs: Path) -> dict[str, list[tuple[int, float]]]:
    """Each metric's (step, value) pairs in the one MLflow run of the store under outputs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{outputs}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert run.info.status == "FINISHED"
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


@pytest.mark.slow
def test_tensorboard_and_mlflow_keep_the_whole_history_over_kills_and_resumes(tmp_path):
    args = [*TINY_OCR, "logger=[tensorboard,mlflow]", "epochs=4"]
    straight = tmp_path / "straight"
    straight.mkdir()
    run_cli(args, straight)

    # Killed mid-epoch 1, past the epoch-0 checkpoint: rows the resumed run logs again.
    # Then killed right after the epoch-2 checkpoint is on disk, before Lightning logs that
    # epoch's train/mean_loss: a row the resumed run does not log again.
    args += ["+callbacks.killer._target_=killer.KillAtEpoch", "+callbacks.killer.epoch=1"]
    args += ["+callbacks.killer.batch=1"]
    args += ["+logger.killer._target_=killer.KillAfterCheckpoint", "+logger.killer.epoch=2"]
    killed = tmp_path / "killed"
    killed.mkdir()
    for ckpt_path in ([], ["ckpt_path=last"]):
        proc = run_cli(args + ckpt_path, killed, check=False)
        assert proc.returncode == -9, proc.stderr[-2000:]
    run_cli(args + ["ckpt_path=last"], killed)

    (expected,) = (straight / "outputs" / "runs").glob("*/*")
    (resumed,) = (killed / "outputs" / "runs").glob("*/*")
    assert metrics_rows(resumed) == metrics_rows(expected)
    assert any("test/loss" in row for row in metrics_rows(resumed))
    # One TensorBoard run and one MLflow run, every value at its step once, as uninterrupted.
    assert tensorboard_scalars(resumed) == tensorboard_scalars(expected)
    assert mlflow_histories(killed / "outputs") == mlflow_histories(straight / "outputs")


def test_a_fresh_fit_in_a_used_dir_starts_a_new_mlflow_run(tmp_path):
    # A trial killed before its first checkpoint starts again from scratch: the values its
    # MLflow run holds came from weights that are gone, so that run makes way for a new one.
    from mlflow.tracking import MlflowClient

    from optsweep.loggers import MLFlowLogger

    store = f"sqlite:///{tmp_path}/mlflow.db"

    def run_id(ckpt_path):
        logger = MLFlowLogger(str(tmp_path), store, ckpt_path, experiment_name="e")
        return logger.run_id

    first = run_id(None)
    assert run_id("checkpoints/last.ckpt") == first  # a resume continues it
    second = run_id(None)
    assert second != first
    client = MlflowClient(store)
    assert client.get_run(first).info.lifecycle_stage == "deleted"
    assert client.get_run(second).info.lifecycle_stage == "active"
    assert run_id("checkpoints/last.ckpt") == second
