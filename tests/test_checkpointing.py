"""Checkpoints under faults: last.ckpt is the last epoch, a kill in the middle of writing one
leaves it whole and no temp file anywhere, an unreadable one falls back to the newest readable
checkpoint of the run, a resume leaves no stale files, and no checkpoint runs code when read.
Real subprocesses, real SIGKILLs, real files on disk."""

import json
import logging
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from helpers import TINY_OCR, run_cli
from optsweep.predict import main as predict
from optsweep.rng import collect_rng_states, restore_rng_states

# Validation that stops improving: with this lr only the batch-norm statistics move, and
# after epoch 1 val/loss no longer goes down (asserted where it matters).
STALLED = [*TINY_OCR, "optimizer=sgd", "lr=1e-12"]


def kill_at_epoch(epoch: int) -> list[str]:
    return ["+callbacks.killer._target_=killer.KillAtEpoch", f"+callbacks.killer.epoch={epoch}"]


def checkpoint_dir(outputs: Path) -> Path:
    (found,) = outputs.glob("runs/*/*/checkpoints")
    return found


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def epoch_of(path: Path) -> int:
    return load(path)["epoch"]


def best_epoch(folder: Path) -> int:
    (best,) = [p for p in folder.glob("*.ckpt") if p.name != "last.ckpt"]
    return epoch_of(best)


def result(outputs: Path) -> dict:
    return json.loads((checkpoint_dir(outputs).parent / "result.json").read_text())


def tracked(last: Path) -> set[str]:
    """The files the ModelCheckpoint state saved in last.ckpt knows, last.ckpt included."""
    (state,) = [v for k, v in load(last)["callbacks"].items() if k.startswith("ModelCheckpoint")]
    paths = {state["last_model_path"], state["best_model_path"], *state["best_k_models"]}
    return {Path(p).name for p in paths if p}


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def tmpdir_elsewhere():
    """An empty $TMPDIR on another file system than the outputs (tmpfs), as on clusters."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None, prefix="optsweep-tmp-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        yield folder
    shutil.rmtree(folder)


@pytest.mark.slow
def test_last_ckpt_is_the_last_epoch_when_validation_stops_improving(tmp_path):
    args = [*STALLED, "epochs=4", "test=false", *kill_at_epoch(3)]
    killed = run_cli(args, tmp_path, check=False)
    assert killed.returncode == -9
    folder = checkpoint_dir(tmp_path / "outputs")
    assert best_epoch(folder) < 2, "validation improved late: the test would prove nothing"
    # Killed at the start of epoch 3: epochs 0-2 are done, and last.ckpt holds epoch 2.
    assert result(tmp_path / "outputs")["epochs_completed"] == 3
    assert epoch_of(folder / "last.ckpt") == 2

    run_cli([*args, "ckpt_path=last"], tmp_path)
    finished = result(tmp_path / "outputs")
    assert finished["resumed_at_epochs"] == [3]  # not the best epoch
    assert [h["epoch"] for h in finished["history"]] == [0, 1, 2, 3]
    assert epoch_of(folder / "last.ckpt") == 3 == finished["epochs_completed"] - 1


@pytest.fixture(scope="module")
def killed_while_writing_last(tmp_path_factory, tmpdir_elsewhere):
    """A run SIGKILLed in the middle of writing last.ckpt at epoch 2, right after it wrote the
    epoch's new best file, then resumed with ckpt_path=last. What the kill left, and the end."""
    root = tmp_path_factory.mktemp("killed_while_writing")
    killer = ["+callbacks.killer._target_=killer.KillDuringSave", "+callbacks.killer.epoch=2"]
    args = [*TINY_OCR, "epochs=4", "test=false", *killer]
    killed = run_cli(args, root, check=False)
    folder = checkpoint_dir(root / "outputs")
    after_kill = {
        "returncode": killed.returncode,
        "files": [p.name for p in files_in(folder)],
        "tmpdir": files_in(tmpdir_elsewhere),
        "last_epoch": epoch_of(folder / "last.ckpt") if (folder / "last.ckpt").exists() else None,
    }
    resumed = run_cli([*args, "ckpt_path=last"], root)
    return after_kill, resumed, root / "outputs", tmpdir_elsewhere


@pytest.mark.slow
def test_a_kill_while_writing_last_ckpt_leaves_it_whole_and_no_temp_file(
    killed_while_writing_last,
):
    after_kill, _, outputs, tmpdir = killed_while_writing_last
    assert after_kill["returncode"] == -9
    assert after_kill["tmpdir"] == []  # nothing written through $TMPDIR
    # The previous last.ckpt, whole; the interrupted write is a temp file beside it.
    assert after_kill["last_epoch"] == 1
    temp = [name for name in after_kill["files"] if not name.endswith(".ckpt")]
    assert len(temp) == 1 and temp[0].startswith(".last.ckpt."), after_kill["files"]
    assert any("epoch=02" in name for name in after_kill["files"])  # killed after the new best

    # The resumed run removed the temp file and finished; nothing was left anywhere.
    folder = checkpoint_dir(outputs)
    assert all(p.suffix == ".ckpt" for p in files_in(folder)), files_in(folder)
    assert files_in(tmpdir) == []
    assert result(outputs)["status"] == "completed"
    assert result(outputs)["epochs_completed"] == 4


@pytest.mark.slow
def test_after_a_resume_only_the_tracked_checkpoints_remain(killed_while_writing_last):
    after_kill, _, outputs, _ = killed_while_writing_last
    folder = checkpoint_dir(outputs)
    names = {p.name for p in files_in(folder)}
    assert names == tracked(folder / "last.ckpt")
    assert len(names) == 2 and not any("-v1" in name for name in names)
    # The kill left the epoch-2 best, which the resumed epoch-1 state does not know, and the
    # epoch-1 best, which it does (so the resumed run had its best file): the resume removed
    # the first, and the retrained epoch 2 superseded the second.
    assert sum(name.endswith(".ckpt") for name in after_kill["files"]) == 3


@pytest.mark.slow
def test_an_unreadable_last_ckpt_resumes_from_the_newest_readable_checkpoint(tmp_path):
    args = [*TINY_OCR, "epochs=3", "test=false", *kill_at_epoch(2)]
    assert run_cli(args, tmp_path, check=False).returncode == -9
    folder = checkpoint_dir(tmp_path / "outputs")
    last = folder / "last.ckpt"
    assert best_epoch(folder) == 1 == epoch_of(last)
    # As a kill during a non-atomic write (or a damaged disk) would leave it.
    last.write_bytes(last.read_bytes()[:1000])

    resumed = run_cli([*args, "ckpt_path=last"], tmp_path)
    said = [
        line for line in (resumed.stdout + resumed.stderr).splitlines() if "resuming from" in line
    ]
    assert len(said) == 1 and "last.ckpt cannot be read" in said[0] and "epoch=01" in said[0]
    finished = result(tmp_path / "outputs")
    assert finished["resumed_at_epochs"] == [2]
    assert [h["epoch"] for h in finished["history"]] == [0, 1, 2]
    assert epoch_of(last) == 2
    assert {p.name for p in files_in(folder)} == tracked(last)  # no .unreadable, no stale best


@pytest.mark.slow
def test_sweep_trials_resume_from_a_readable_checkpoint_or_start_again(tmp_path):
    sweep = tmp_path / "sweep"
    command = ["-m", "hydra/launcher=local", "lr=1e-3,2e-3", *TINY_OCR, "epochs=2", "test=false"]
    command += [*kill_at_epoch(1), f"hydra.sweep.dir={sweep}"]
    run_cli(command, tmp_path)  # both trials killed at the start of epoch 1
    ((one,), (two,)) = (list(sweep.glob(f"*,lr={lr},*")) for lr in ("0.001", "0.002"))
    for trial in (one, two):
        last = trial / "checkpoints" / "last.ckpt"
        last.write_bytes(last.read_bytes()[:1000])
    # The second trial has no readable checkpoint at all.
    cut = {p.name for p in (two / "checkpoints").glob("*.ckpt")}
    for best in (two / "checkpoints").glob("optimizer=*.ckpt"):
        best.write_bytes(best.read_bytes()[:1000])

    run_cli(command, tmp_path)
    # The first continued from its epoch-0 best and finished; the second started again (and
    # met the same kill at epoch 1: the killer fires in fresh runs).
    for trial, resumed_at, epochs in ((one, [1], [0, 1]), (two, [], [0])):
        finished = json.loads((trial / "result.json").read_text())
        assert finished["resumed_at_epochs"] == resumed_at
        assert [h["epoch"] for h in finished["history"]] == epochs
        folder = trial / "checkpoints"
        # No last-v1.ckpt (epoch 0's best knew no last.ckpt): only the files the last.ckpt of
        # the new run knows, and in the trial that started again, its old files set aside.
        aside = {p.name for p in files_in(folder) if p.name.endswith(".unreadable")}
        assert aside == ({f"{name}.unreadable" for name in cut} if trial == two else set())
        assert {p.name for p in files_in(folder)} - aside == tracked(folder / "last.ckpt")
        assert epoch_of(folder / "last.ckpt") == epochs[-1]
    assert json.loads((one / "result.json").read_text())["status"] == "completed"


def test_an_io_error_fails_the_trial_and_keeps_its_checkpoints(tmp_path, monkeypatch):
    # A passing disk or NFS fault (EIO) says nothing about the file: deleting or setting aside
    # the checkpoints then would throw away a trial's epochs. torch.load is made to fail as
    # such a disk would: no real disk here fails on demand.
    from optsweep.errors import UserError
    from optsweep.sweep.trial import _resume_from

    for name in ("last.ckpt", "optimizer=adam-epoch=00.ckpt"):
        (tmp_path / name).write_bytes(b"a checkpoint")

    def eio(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(torch, "load", eio)
    with pytest.raises(UserError, match="cannot be read: .*Input/output error"):
        _resume_from(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last.ckpt",
        "optimizer=adam-epoch=00.ckpt",
    ]


class Payload:
    """Unpickling it creates `path`: how a hostile checkpoint would run code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def write_hostile(path: Path, witness: Path, like: Path | None = None) -> None:
    """A checkpoint (a copy of `like`, when given) with a payload that creates `witness`."""
    torch.save({**(load(like) if like else {}), "payload": Payload(witness)}, path)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    witness = tmp_path / "payload-ran"
    write_hostile(tmp_path / "evil.ckpt", witness)
    before = files_in(tmp_path)

    proc = run_cli([*TINY_OCR, f"ckpt_path={tmp_path}/evil.ckpt"], tmp_path, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "pickled objects" in lines[0]

    with pytest.raises(SystemExit) as exit_:
        predict([str(tmp_path / "evil.ckpt"), str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not witness.exists()
    assert files_in(tmp_path) == before


@pytest.mark.slow
def test_lightning_reads_checkpoints_weights_only_too(tmp_path, monkeypatch):
    """The best checkpoint is read again by Lightning for the test; one swapped for a hostile
    file between two runs of a resume is refused there too, whatever the environment says."""
    args = [*STALLED, "epochs=3", *kill_at_epoch(2)]
    assert run_cli(args, tmp_path, check=False).returncode == -9
    folder = checkpoint_dir(tmp_path / "outputs")
    assert best_epoch(folder) < 2, "validation improved late: the best file would be replaced"
    (best,) = [p for p in folder.glob("*.ckpt") if p.name != "last.ckpt"]
    witness = tmp_path / "payload-ran"
    write_hostile(best, witness, like=best)

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    proc = run_cli([*args, "ckpt_path=last"], tmp_path, check=False)
    assert not witness.exists()
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert best.name in errors[0] and "pickled objects" in errors[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def fake_gpus(monkeypatch, count: int) -> dict[int, torch.Tensor]:
    """torch.cuda seeing `count` devices (there is no GPU here): what set_rng_state received,
    by device; a device it does not see raises, as the driver does."""
    restored = {}

    def set_rng_state(state: torch.Tensor, device: int = 0) -> None:
        if device >= count:
            raise RuntimeError("CUDA error: invalid device ordinal")
        restored[device] = state

    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    return restored


@pytest.mark.parametrize("visible", [1, 0])
def test_resume_on_fewer_gpus_restores_the_generators_it_can(monkeypatch, caplog, visible):
    states = collect_rng_states()
    saved = [torch.full((16,), device, dtype=torch.uint8) for device in range(2)]
    states["cuda"] = saved  # as saved on a machine with two GPUs
    expected = torch.rand(3)
    restored = fake_gpus(monkeypatch, visible)

    with caplog.at_level(logging.INFO, logger="optsweep.rng"):
        restore_rng_states(states)
    assert torch.equal(torch.rand(3), expected)  # the rest of the state was restored
    assert restored.keys() == set(range(visible))
    assert all(torch.equal(restored[d], saved[d]) for d in restored)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "optsweep.rng"]
    assert f"CUDA RNG state of 2 device(s), this process sees {visible}" in line
