"""Checkpoint and resume: per-epoch state, finished stages, run folders, SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf import fit, training
from afetler_tf.runs import RunDirError, RunFolder

TINY = ["--set", "train.batch_size=16", "--set", "tower.embedding_dim=8",
        "--set", "tower.tower_units=[16,8]", "--set", "tower.ranking_units=[16]",
        "--set", "train.patience=20", "--set", "gan.enabled=false", "--epochs", "4"]


def _model(seed=3):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([tf.keras.layers.Dense(4, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(16)


class _Crash(tf.keras.callbacks.Callback):
    """Stands in for a kill: stops the process's fit as epoch 2 begins."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("killed")


def test_a_resumed_stage_continues_exactly_where_it_stopped(tmp_path):
    straight = _model()
    training.fit_with_early_stopping(straight, _data(), None, 3, 1, verbose=0,
                                  checkpoint_dir=str(tmp_path / "straight"))
    crashed = _model()
    with pytest.raises(RuntimeError, match="killed"):
        training.fit_with_early_stopping(crashed, _data(), None, 3, 1, verbose=0,
                                      checkpoint_dir=str(tmp_path / "run"), callbacks=[_Crash()])
    restarted = _model(seed=99)  # a new process: other initial weights, no optimizer state
    history = training.fit_with_early_stopping(restarted, _data(), None, 3, 1, verbose=0,
                                            checkpoint_dir=str(tmp_path / "run"))
    assert history["resumed_after_epoch"] == 1 and len(history["loss"]) == 3
    for a, b in zip(straight.get_weights(), restarted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # model + Adam state restored
    again = _model(seed=7)
    again(tf.zeros((1, 3)))
    assert training.fit_with_early_stopping(again, _data(), None, 3, 1, verbose=0,
                                         checkpoint_dir=str(tmp_path / "run")) == history
    for a, b in zip(restarted.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b)  # a finished stage is skipped, its weights restored


def test_early_stopping_state_survives_a_restart(tmp_path):
    model = _model()
    validation = _data().take(1)
    training.fit_with_early_stopping(model, _data(), validation, 4, 2, monitor="val_loss", verbose=0,
                                  checkpoint_dir=str(tmp_path))
    state = json.loads((tmp_path / "state.json").read_text())
    losses = [e["val_loss"] for e in state["logs"]]
    assert state["best_epoch"] == int(np.argmin(losses)) + 1
    assert state["best"] == pytest.approx(min(losses))
    assert (tmp_path / "done.json").exists() and not (tmp_path / "epochs").exists()


class _Scripted(tf.keras.callbacks.Callback):
    """Logs ``val_ndcg@10`` from a script, as ValidationRanking does."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch, logs=None):
        logs["val_ndcg@10"] = self.scores[epoch]


@pytest.mark.parametrize("resumable", [False, True])
def test_a_callback_metric_stops_training_without_validation_batches(tmp_path, resumable):
    scores = [0.1, 0.3, 0.2, 0.25, 0.9, 1.0]  # best at epoch 2; patience 2 stops after epoch 4
    model = _model()
    weights = {}

    class Remember(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights[epoch] = [w.copy() for w in self.model.get_weights()]

    history = training.fit_with_early_stopping(
        model, _data(), None, 6, 2, monitor="val_ndcg@10", verbose=0, early_stop=True,
        checkpoint_dir=str(tmp_path) if resumable else None,
        callbacks=[_Scripted(scores), Remember()])
    assert history["val_ndcg@10"] == pytest.approx(scores[:4])
    assert history["best_epoch"] == 2 and not any(k.startswith("val_loss") for k in history)
    for a, b in zip(model.get_weights(), weights[1]):
        np.testing.assert_allclose(a, b)  # the best epoch's weights restored


CONFIG = {"model": "afetler", "train": {"epochs": 2}}


@pytest.mark.parametrize("state, config, overwrite, expected", [
    (None, CONFIG, False, "new"),
    ({"status": "running", "config": CONFIG}, CONFIG, False, "resume"),
    ({"status": "finished", "config": CONFIG}, CONFIG, False, "holds a finished run"),
    ({"status": "running", "config": CONFIG}, {"model": "afetler", "train": {"epochs": 3}},
     False, "changed: train.epochs"),
    ({"status": "finished", "config": CONFIG}, CONFIG, True, "overwrite"),
])
def test_check_run_dir(tmp_path, state, config, overwrite, expected):
    if state is not None:
        RunFolder(str(tmp_path)).mark(state["config"], state["status"])
    if expected in ("new", "resume", "overwrite"):
        assert RunFolder(str(tmp_path)).check(config, overwrite) == expected
    else:
        with pytest.raises(RunDirError, match=re.escape(expected)):
            RunFolder(str(tmp_path)).check(config, overwrite)


def test_check_run_dir_refuses_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a fit run.*--overwrite"):
        RunFolder(str(tmp_path)).check(CONFIG)


def _cmd(data_dir, out, *extra):
    return [sys.executable, "-m", "afetler_tf.fit", "--data", data_dir, "--out", out, *TINY, *extra]


def _start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def write_folder(folder, data) -> str:
    """``data`` written as a shop's own logs (the generic folder format)."""
    folder.mkdir(parents=True, exist_ok=True)
    data.interactions.to_csv(folder / "interactions.csv", index=False)
    data.users.to_csv(folder / "users.csv", index=False)
    items = data.items.drop(columns=["category"]).copy()
    items["categories"] = items["categories"].map("|".join)
    items.to_csv(folder / "items.csv", index=False)
    return str(folder)


def _kill_after_first_epoch(proc, state_path, timeout=120):
    """SIGKILLs ``proc`` once it has written an epoch to ``state_path``; returns that state."""
    start = time.time()
    while time.time() < start + timeout and proc.poll() is None:
        if os.path.exists(state_path) and os.path.getmtime(state_path) > start:
            state = json.loads(open(state_path).read())
            if state["epochs_done"] >= 1:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return json.loads(open(state_path).read())  # as the killed process left it
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no epoch was checkpointed in {state_path} before the fit ended")


def _finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def _first_epoch(out, stage):
    found = re.findall(rf"^{stage} epoch\s+(\d+)", out, flags=re.M)
    return int(found[0]) if found else None


def test_a_killed_fit_resumes_and_loses_at_most_one_epoch(tmp_path, tiny_data, capsys):
    data_dir = write_folder(tmp_path / "shop", tiny_data)
    out = str(tmp_path / "run")
    checkpoints = os.path.join(out, "checkpoints")
    # Kill 1: inside stage 1 (joint).
    killed = _kill_after_first_epoch(_start(_cmd(data_dir, out)), f"{checkpoints}/joint/state.json")
    # Restart, then kill 2: inside stage 2 (ranking).
    second = _start(_cmd(data_dir, out))
    killed2 = _kill_after_first_epoch(second, f"{checkpoints}/ranking/state.json")
    text = second.stdout.read()
    assert "resuming the unfinished run" in text
    assert f"joint resuming after epoch {killed['epochs_done']}" in text
    assert _first_epoch(text, "joint") == killed["epochs_done"] + 1  # lost: the epoch it was in
    text = _finish(_start(_cmd(data_dir, out)))
    assert "joint stage already finished" in text and _first_epoch(text, "joint") is None
    assert f"ranking resuming after epoch {killed2['epochs_done']}" in text
    assert _first_epoch(text, "ranking") == killed2["epochs_done"] + 1
    history = json.loads(open(os.path.join(out, "history.json")).read())
    assert len(history["loss"]) == 4 and history["resumed_after_epoch"] == killed["epochs_done"]
    assert len(history["ranking/loss"]) == 4
    assert json.loads(open(os.path.join(out, "run_state.json")).read())["status"] == "finished"
    assert fit.main(_cmd(data_dir, out)[3:]) == 2  # finished: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
