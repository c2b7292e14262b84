"""Training engine: same seed -> bit-identical weights; a killed run resumes to the same weights."""

import math

import pytest
import torch
import torch.nn as nn

from claimbench.errors import CacheError, ClaimbenchError, TrainingDiverged
from claimbench.train import Callback, TrainConfig, augment_batch, fit, lr_at, seed_everything

torch.set_num_threads(1)


def data(n=200):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return x, y


def model(seed=0):
    seed_everything(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


CFG = TrainConfig(epochs=4, batch_size=32, lr=0.1, schedule="step", milestones=(0.5,), augment="crop_flip",
                  weight_decay=1e-4, grad_clip=1.0)


def weights(m):
    return torch.cat([p.detach().flatten() for p in m.state_dict().values()])


class StepRecorder(Callback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, state):
        if state.step % 7 == 0:
            self.steps.append(state.step)

    def state_dict(self):
        return {"steps": list(self.steps)}

    def load_state_dict(self, d):
        self.steps = d["steps"]


def test_same_seed_bit_identical_and_other_seed_differs():
    a, b, c = model(), model(), model()
    fit(a, data(), CFG, seed=1)
    fit(b, data(), CFG, seed=1)
    fit(c, data(), CFG, seed=2)
    assert torch.equal(weights(a), weights(b))
    assert not torch.equal(weights(a), weights(c))


class KillAfterCheckpoint(Callback):
    """Raises at the end of epoch `at` + 1, i.e. after epoch `at`'s checkpoint was written: a kill."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, state):
        if state.epoch == self.at + 1:
            raise KeyboardInterrupt


def test_resume_after_kill_gives_identical_weights_and_callback_state(tmp_path):
    ref, rec_ref = model(), StepRecorder()
    fit(ref, data(), CFG, seed=1, callbacks=[rec_ref])
    ck = tmp_path / "ck.pt"
    killed, rec1 = model(), StepRecorder()
    with pytest.raises(KeyboardInterrupt):
        fit(killed, data(), CFG, seed=1, checkpoint=ck, callbacks=[rec1, KillAfterCheckpoint(2)])
    assert ck.exists() and torch.load(ck, weights_only=True)["epoch"] == 2
    resumed, rec2 = model(seed=99), StepRecorder()  # different init: everything must come from the checkpoint
    state = fit(resumed, data(), CFG, seed=1, checkpoint=ck, callbacks=[rec2])
    assert state.epoch == 4 and state.step == CFG.total_steps(200)
    assert torch.equal(weights(ref), weights(resumed))
    assert rec2.steps == rec_ref.steps


def test_a_stopped_run_stays_stopped_on_resume(tmp_path):
    ck = tmp_path / "ck.pt"
    stopped = model()
    fit(stopped, data(), CFG, seed=1, checkpoint=ck, stop_when=lambda s: s.epoch == 2)
    resumed = model(seed=99)
    state = fit(resumed, data(), CFG, seed=1, checkpoint=ck)
    assert state.epoch == 2 and torch.equal(weights(stopped), weights(resumed))


def test_checkpoint_of_another_config_or_corrupt_is_a_clear_error(tmp_path):
    ck = tmp_path / "ck.pt"
    fit(model(), data(), CFG, seed=1, checkpoint=ck)
    with pytest.raises(CacheError, match="belongs to another run"):
        fit(model(), data(), TrainConfig(epochs=4, batch_size=16, lr=0.1), seed=1, checkpoint=ck)
    ck.write_bytes(b"\x00garbage")
    with pytest.raises(CacheError, match="corrupt.*delete it"):
        fit(model(), data(), CFG, seed=1, checkpoint=ck)


def test_eval_history_and_exact_step_budget():
    x, y = data()
    cfg = TrainConfig(epochs=100, batch_size=32, lr=0.05, steps=10)
    state = fit(model(), (x, y), cfg, seed=0, eval_sets={"train": (x, y)}, eval_every=1)
    assert state.step == 10 and state.epoch == 2  # 7 steps per epoch -> stops inside the 2nd epoch
    assert [h["epoch"] for h in state.history] == [1, 2] and 0 <= state.history[-1]["train_acc"] <= 1


def test_learning_rate_schedules():
    exp = TrainConfig(epochs=3, batch_size=10, lr=1.0, schedule="exp", gamma=0.5)
    assert [lr_at(exp, s, 30, 10) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    step = TrainConfig(epochs=7, batch_size=1, lr=1.0, schedule="step", gamma=0.1, milestones=(3 / 7, 5 / 7))
    assert math.isclose(lr_at(step, 2, 7, 1), 1.0) and math.isclose(lr_at(step, 3, 7, 1), 0.1)
    assert math.isclose(lr_at(step, 5, 7, 1), 0.01)
    cos = TrainConfig(epochs=1, batch_size=1, lr=2.0, schedule="cosine", warmup_steps=2)
    assert lr_at(cos, 0, 10, 10) == 1.0 and math.isclose(lr_at(cos, 2, 10, 10), 2.0)
    assert lr_at(cos, 10, 10, 10) < 1e-12


def test_augment_crop_is_a_shift_and_none_is_identity():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5) + 1
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment_batch(x, "none", g), x)
    out = augment_batch(x, "crop", g, pad=1)
    assert out.shape == x.shape
    for i in range(2):  # every nonzero value of a crop is a value of the original at the same shift
        nz = out[i][out[i] > 0]
        assert set(nz.tolist()) <= set(x[i].flatten().tolist())


def test_diverging_loss_is_a_one_line_claimbench_error():
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as err:
        fit(model(), data(), TrainConfig(epochs=2, batch_size=32, lr=1e30, momentum=0.0), seed=0)
    assert isinstance(err.value, ClaimbenchError) and "\n" not in str(err.value)


class RunsAShellCommand:
    """A pickle payload: unpickling it calls os.system (what a crafted checkpoint.pt would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_runs_nothing_and_fails_with_one_line(tmp_path):
    marker, ck = tmp_path / "pwned", tmp_path / "checkpoint.pt"
    torch.save({"run_id": "x", "payload": RunsAShellCommand(marker)}, ck)
    with pytest.raises(CacheError, match=r"checkpoint .*checkpoint\.pt is corrupt or not a plain tensor file") as err:
        fit(model(), data(), CFG, seed=1, checkpoint=ck)
    assert not marker.exists(), "unpickling the checkpoint executed code"
    assert "\n" not in str(err.value) and "delete it" in str(err.value)
    torch.load(ck, weights_only=False)  # the payload is real: the unsafe loader does run it
    assert marker.exists()


@pytest.mark.needs_data
def test_malicious_checkpoint_through_a_stage_exits_2_with_one_line(toy_root, capsys):
    """An unfinished run folder (as a shared DVC cache could hold) with a crafted checkpoint."""
    from claimbench.stage import main
    from claimbench.sweep import run_dir

    marker = toy_root / "pwned"
    d = run_dir(toy_root / "artifacts/ci/toy/runs", {"seed": 0, "per_class": 20, "epochs": 2})
    d.mkdir(parents=True)
    torch.save({"payload": RunsAShellCommand(marker)}, d / "checkpoint.pt")
    assert main("toy", ["train"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line[:4].isdigit()]  # no log lines
    assert len(err) == 1 and err[0].startswith("error: run seed=0 failed (1 of 2; the others finished")
    assert "checkpoint " in err[0] and "not a plain tensor file" in err[0]
    assert not marker.exists()
    # the other run was not stopped by the failure: it finished and is cached
    other = run_dir(toy_root / "artifacts/ci/toy/runs", {"seed": 1, "per_class": 20, "epochs": 2})
    assert (other / "done.json").exists()
