"""Resume: a killed run continued from its checkpoint ends exactly where an uninterrupted run
ends. Real subprocesses, a real SIGKILL, real checkpoints on disk."""

import json
from pathlib import Path

import pytest
import torch

from helpers import TINY_OCR, metrics_rows, results, run_cli, write_image_folder
from optsweep.report.trials import Trial

KILL_AT_EPOCH_2 = ["+callbacks.killer._target_=killer.KillAtEpoch", "+callbacks.killer.epoch=2"]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    last = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(last, map_location="cpu", weights_only=True)["state_dict"]


def only_run(outputs: Path) -> Path:
    (run_dir,) = [p.parent for p in outputs.glob("runs/*/*/result.json")]
    return run_dir


TASKS = {
    # CTC + Adam + StepLR halving every epoch: optimizer and scheduler state both matter.
    # The kill at epoch 2 (step 6) also falls inside the 8-step warmup.
    "ocr": [*TINY_OCR, "scheduler=step", "scheduler.scheduler.step_size=1", "warmup_steps=8"]
    + ["test=false"],
    # Adam to SGD, killed at epoch 2: once after the switch (epoch 1), once before (epoch 3).
    "adam_to_sgd switched": [*TINY_OCR, "optimizer=adam_to_sgd", "optimizer.switch_epoch=1"]
    + ["scheduler=step", "scheduler.scheduler.step_size=1", "test=false"],
    "adam_to_sgd not yet": [*TINY_OCR, "optimizer=adam_to_sgd", "optimizer.switch_epoch=3"]
    + ["scheduler=cosine", "test=false"],
    # Muon and AdamW halves at their own LRs; WSD decays from step 6, where the kill falls
    # (its state leaves the run's length to the config: the same here, so nothing changes).
    "muon + wsd": [*TINY_OCR, "optimizer=muon", "optimizer.adamw_lr=0.003", "scheduler=wsd"]
    + ["scheduler.scheduler.decay_fraction=0.5", "test=false"],
    # Schedule-free: each checkpoint holds the averaged weights x, the next epoch trains from y
    # rebuilt from them; the resumed run must switch exactly where the uninterrupted one did.
    "schedulefree_adamw": [*TINY_OCR, "optimizer=schedulefree_adamw", "warmup_steps=8"]
    + ["test=false"],
    # Random crops and flips draw from the global RNG, so RNG state must be restored too.
    "image_folder": [
        "data=image_folder",
        "model=simple_cnn",
        "batch_size=8",
        "optimizer=sgd",
        "lr=0.05",
        "trainer=cpu",
        "test=false",
    ],
    # SAM keeps its base optimizer's state (Adam's here); 3 batches in windows of 2 and 1.
    "sam": [*TINY_OCR, "optimizer=sam", "optimizer@optimizer.base=adam", "warmup_steps=3"]
    + ["trainer.accumulate_grad_batches=2", "scheduler=step", "scheduler.scheduler.step_size=1"]
    + ["test=false"],
    # L-BFGS keeps its curvature history (lists of tensors) and line-search state.
    "lbfgs": ["data=image_folder", "model=simple_cnn", "batch_size=8", "optimizer=lbfgs"]
    + ["optimizer.max_iter=4", "lr=0.1", "trainer=cpu", "test=false"],
}


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_kill_and_resume_equals_uninterrupted_run(tmp_path, task):
    args = list(TASKS[task])
    if "data=image_folder" in args:
        args.append(f"data.root={write_image_folder(tmp_path / 'images')}")

    # The uninterrupted run in a new interpreter: the killed and resumed runs, forked from the
    # tests' server (helpers.start_cli), share nothing with it, not even the hash seed.
    straight = tmp_path / "straight"
    straight.mkdir()
    run_cli([*args, "epochs=4"], straight, fresh=True)

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = run_cli([*args, "epochs=4", *KILL_AT_EPOCH_2], killed, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL: no cleanup ran
    run_dir = only_run(killed / "outputs")
    interrupted = json.loads((run_dir / "result.json").read_text())
    assert interrupted["status"] == "running" and interrupted["epochs_completed"] == 2

    # The user retypes the same command plus ckpt_path=last: it continues in place.
    run_cli([*args, "epochs=4", *KILL_AT_EPOCH_2, "ckpt_path=last"], killed)
    assert only_run(killed / "outputs") == run_dir
    resumed = json.loads((run_dir / "result.json").read_text())
    assert resumed["status"] == "completed"
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3]

    expected, actual = final_weights(only_run(straight / "outputs")), final_weights(run_dir)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    reference = json.loads((only_run(straight / "outputs") / "result.json").read_text())
    assert resumed["history"] == reference["history"]

    # metrics.csv: the rows from before the kill are kept, none is there twice.
    assert metrics_rows(run_dir) == metrics_rows(only_run(straight / "outputs"))
    # ...so the sweep report's LR-schedule chart of a resumed trial is whole.
    lrs = Trial("killed", run_dir).steps_lr()
    assert lrs == Trial("straight", only_run(straight / "outputs")).steps_lr() and lrs


def test_resume_from_an_explicit_checkpoint_continues_its_epochs(tmp_path):
    run_cli([*TINY_OCR, "epochs=1", "test=false"], tmp_path)
    first = only_run(tmp_path / "outputs")
    ckpt = first / "checkpoints" / "last.ckpt"
    run_cli([*TINY_OCR, "epochs=2", "test=false", f"ckpt_path='{ckpt}'"], tmp_path)
    runs = sorted(p.parent for p in (tmp_path / "outputs").glob("runs/*/*/result.json"))
    (second,) = [r for r in runs if r != first]
    result = json.loads((second / "result.json").read_text())
    assert [h["epoch"] for h in result["history"]] == [0, 1]  # epoch 0 came with the checkpoint
    assert result["status"] == "completed"


# The new optimizers whose stepping is plain (one gradient, one step) but whose state is their
# own: adaptive step sizes (prodigy, dadapt_adam), factored moments (adafactor), sign updates
# (lion), schedule-free iterates (schedulefree_sgd). The special ones have their own TASKS.
PLAIN_NEW = ["lion", "adopt", "adafactor", "prodigy", "dadapt_adam", "schedulefree_sgd"]


@pytest.mark.slow
def test_each_plain_new_optimizer_killed_and_resumed_equals_an_uninterrupted_run(tmp_path):
    # One sweep per leg, a trial per optimizer, each in its own process (hydra/launcher=local):
    # in the killed leg every trial SIGKILLs itself at epoch 2, and the re-run resumes them all.
    grid = ["-m", "hydra/launcher=local", f"optimizer={','.join(PLAIN_NEW)}"]
    grid += [*TINY_OCR, "epochs=4", "test=false"]
    run_cli([*grid, f"hydra.sweep.dir={tmp_path / 'straight'}"], tmp_path)
    killed = [*grid, *KILL_AT_EPOCH_2, f"hydra.sweep.dir={tmp_path / 'killed'}"]
    run_cli(killed, tmp_path, check=False)
    interrupted = results(tmp_path / "killed")
    assert [r["epochs_completed"] for r in interrupted.values()] == [2] * len(PLAIN_NEW)
    run_cli(killed, tmp_path)

    def by_optimizer(sweep: str) -> dict[str, Path]:
        trials = results(tmp_path / sweep).items()
        return {r["choices"]["optimizer"]: tmp_path / sweep / name for name, r in trials}

    straight, resumed = by_optimizer("straight"), by_optimizer("killed")
    assert sorted(resumed) == sorted(PLAIN_NEW)
    for name in PLAIN_NEW:
        result = json.loads((resumed[name] / "result.json").read_text())
        assert result["status"] == "completed" and result["resumed_at_epochs"] == [2], name
        expected, actual = final_weights(straight[name]), final_weights(resumed[name])
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=name)
        reference = json.loads((straight[name] / "result.json").read_text())
        assert result["history"] == reference["history"], name
