"""tf.distribute: TF_CONFIG checks, and two workers on loopback vs one worker."""

import json
import os
import socket
import subprocess
import sys

import pytest

from afetler_tf import fit
from afetler_tf.runs.training_run import run
from afetler_tf.training import distribute
from test_resume import write_folder

TINY = ["--epochs", "2", "--set", "train.batch_size=64", "--set", "tower.embedding_dim=8",
        "--set", "tower.tower_units=[16,8]", "--set", "tower.ranking_units=[16]",
        "--set", "gan.enabled=false", "--set", "train.patience=20"]
# Two workers see the same global batches, but each replica's in-batch softmax
# has only its half of the batch as negatives, so results differ a little.
TOLERANCE = {("R", "rmse"): 0.05, ("T", "ndcg@10"): 0.05}


def _config(task=("worker", 0), **cluster):
    cluster = cluster or {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}
    return json.dumps({"cluster": cluster, "task": {"type": task[0], "index": task[1]}})


@pytest.mark.parametrize("raw, strategy, message", [
    ("", "multiworker", "needs TF_CONFIG"),
    ("{not json", "multiworker", "not valid JSON"),
    ('{"cluster": {}}', "multiworker", "'cluster' and 'task'"),
    (_config(("worker", 2)), "multiworker", "task.index 2 is out of range"),
    (_config(("chief", 0)), "multiworker", "task.type 'chief' is not a role"),
    (_config(ps=["127.0.0.1:1"], worker=["127.0.0.1:2"]), "multiworker", "role(s) ['ps']"),
    (_config(worker=["127.0.0.1:2001", "127.0.0.1:2001"]), "multiworker", "used twice"),
    (_config(worker=["localhost"]), "multiworker", "not 'host:port'"),
    (_config(worker=["127.0.0.1:1"], ps=["127.0.0.1:2"]), "parameter_server", "needs cluster.chief"),
])
def test_inconsistent_tf_config_is_a_clear_error(raw, strategy, message):
    with pytest.raises(distribute.TFConfigError, match=message.replace("(", r"\(").replace(
            ")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        distribute.read_tf_config(strategy, {"TF_CONFIG": raw})


def test_a_valid_tf_config_names_the_chief():
    config = distribute.read_tf_config("multiworker", {"TF_CONFIG": _config(("worker", 1))})
    assert not distribute.is_chief(config) and distribute.task_name(config) == "worker-1"
    config = distribute.read_tf_config("parameter_server", {"TF_CONFIG": _config(
        ("chief", 0), chief=["h:1"], worker=["h:2"], ps=["h:3"])})
    assert distribute.is_chief(config)


def test_fit_reports_a_bad_tf_config(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TF_CONFIG", _config(("worker", 5)))
    assert fit.main(["--strategy", "multiworker", "--out", str(tmp_path / "run")]) == 2
    assert "task.index 5 is out of range" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_finish_and_match_one_worker(tmp_path, tiny_data):
    data_dir = write_folder(tmp_path / "shop", tiny_data)
    out = str(tmp_path / "two")
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": addresses},
                                                     "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "afetler_tf.fit", "--strategy", "multiworker", "--data",
             data_dir, "--out", out, "--quiet", *TINY], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    single = run(fit.resolve_config(fit.parse_args(["--data", data_dir, *TINY])), verbose=0)
    logs = [worker.communicate(timeout=400)[0] for worker in workers]
    for index, worker in enumerate(workers):
        assert worker.returncode == 0, f"worker {index}:\n" + "\n".join(log[-2500:] for log in logs)
    chief = json.loads(open(os.path.join(out, "metrics.json")).read())
    other = json.loads(open(os.path.join(out, "workers", "worker-1.json")).read())["metrics"]
    for (protocol, name), tolerance in TOLERANCE.items():
        assert other[protocol][name] == pytest.approx(chief[protocol][name], abs=1e-6)  # in sync
        assert abs(chief[protocol][name] - single.metrics[protocol][name]) <= tolerance
