"""Tracking: logger=tensorboard and logger=mlflow (open what each wrote and find the run's
metrics there; both keep metrics.csv too, which the sweep report reads), and the config tree
a run prints and keeps."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import TINY_OCR, compose_cfg, run_cli
from optsweep.train import fit

EPOCHS = 2


def test_tensorboard_has_the_metrics_per_epoch(tmp_path):
    fit(compose_cfg([*TINY_OCR, "logger=tensorboard", f"epochs={EPOCHS}", "test=false"], tmp_path))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/mean_loss", "val/loss", "val/word_acc", "train/lr"} <= set(scalars)
    assert len(events.Scalars("val/loss")) == EPOCHS
    assert (tmp_path / "metrics.csv").is_file()


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


def test_a_run_prints_its_config_tree_and_keeps_it(tmp_path, capsys):
    fit(compose_cfg([*TINY_OCR, "optimizer=sgd", "epochs=1", "test=false"], tmp_path))
    printed = capsys.readouterr().out
    saved = (tmp_path / "config_tree.txt").read_text()
    for text in ("├── knobs", "├── optimizer", "_target_: torch.optim.SGD", "effective_lr: 0.001"):
        assert text in printed and text in saved, text
