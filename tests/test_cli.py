"""The thin CLIs: fit, recommend, the experiments harness and its renderer, on a tiny data folder."""

import json
import os

import pytest

from afetler_tf import fit, recommend
from afetler_tf.runs import RunFolder
from conftest import write_shop
from experiments import benchmark, benchmark_report, render

TINY = ["--set", "train.batch_size=64", "--set", "tower.embedding_dim=8",
        "--set", "tower.tower_units=[16,8]", "--set", "tower.ranking_units=[16]"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_data):
    """tiny_data written as a shop's own logs (the generic folder format)."""
    return str(write_shop(tmp_path_factory.mktemp("shop"), tiny_data))


@pytest.fixture(scope="module")
def afetler_run(tmp_path_factory, data_dir):
    out = str(tmp_path_factory.mktemp("runs") / "afetler")
    assert fit.main(["--data", data_dir, "--epochs", "2", "--out", out, "--quiet", *TINY]) == 0
    return out


def test_fit_writes_a_complete_run(afetler_run):
    for name in ("config.json", "metrics.json", "history.json", "report.md"):
        assert os.path.exists(os.path.join(afetler_run, name)), name
    with open(os.path.join(afetler_run, "metrics.json")) as f:
        metrics = json.load(f)
    assert {"rmse", "mae", "accuracy@10", "precision@10", "roc_auc@10"} <= set(metrics["R"])
    assert {"precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10"} <= set(metrics["T"])
    with open(os.path.join(afetler_run, "config.json")) as f:
        assert json.load(f)["train"]["epochs"] == 2


@pytest.mark.parametrize("model, epochs", [("popularity", []), ("mf", ["--epochs", "1"])])
def test_fit_trains_the_baselines(tmp_path, data_dir, model, epochs):
    out = str(tmp_path / model)
    assert fit.main(["--model", model, "--data", data_dir, *epochs, "--out", out, "--quiet"]) == 0
    assert os.path.exists(os.path.join(out, "metrics.json"))
    if model == "mf":  # --epochs is the chosen model's (mf.epochs), not train.epochs
        with open(os.path.join(out, "history.json")) as f:
            history = json.load(f)
        with open(os.path.join(out, "config.json")) as f:
            assert json.load(f)["mf"]["epochs"] == 1
        assert len(history["loss"]) == 1, history


def test_fit_resumes_from_a_config_file(tmp_path, afetler_run):
    args = fit.parse_args(["--config", os.path.join(afetler_run, "config.json"), "--seed", "7"])
    config = fit.resolve_config(args)
    assert config.train.epochs == 2 and config.data.seed == 7 and config.train.seed == 7


@pytest.mark.parametrize("bad, message", [
    (["--set", "tower.nope=1"], "unknown field 'nope'"),
    (["--set", "nosection.x=1"], "SECTION.FIELD=VALUE"),
    (["--config", "/does/not/exist.json"], "does not exist"),
])
def test_fit_rejects_bad_options_clearly(capsys, bad, message):
    assert fit.main(bad) == 2
    assert message in capsys.readouterr().err


def test_fit_reports_a_missing_data_folder(capsys, tmp_path):
    assert fit.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "missing" in capsys.readouterr().err


def test_recommend_explains_from_a_saved_run(capsys, afetler_run):
    assert recommend.main(["--run", afetler_run, "--user", "u1", "--k", "3", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "top 3 for user u1" in out and "because" in out
    assert recommend.main(["--run", afetler_run, "--user", "stranger", "--k", "2"]) == 0
    assert "unknown user" in capsys.readouterr().out


def test_recommend_never_returns_seen_items(afetler_run):
    from afetler_tf.runs.training_run import load_run
    result = load_run(afetler_run)
    table = recommend.recommend(result.model, result.data, result.split, "u1", k=20)
    assert not set(table["item_id"]) & recommend.seen_items(result.split, "u1")
    assert list(table["rank"]) == list(range(1, 21))


def test_benchmark_renders_suite_files(tmp_path):
    """The report only formats what a suite file holds (values made up here)."""
    run = {"label": "mf", "model": "mf", "seed": 1, "fit_seconds": 3.0, "wall_seconds": 4.0,
           "epochs": 2, "metrics": {"R": {c: 0.5 for c in benchmark_report.R_COLUMNS},
                                    "T": {c: 0.25 for c in benchmark_report.T_COLUMNS}}}
    other = dict(run, label="deepfm", metrics={"R": {c: 0.6 for c in benchmark_report.R_COLUMNS},
                                               "T": {c: 0.2 for c in benchmark_report.T_COLUMNS}})
    suite = {"suite": "main", "machine": {"platform": "p", "cpus": 2, "gpu": False, "python": "3",
                                          "tensorflow": "2", "tfrs": "0", "pandas": "3"},
             "wall_seconds": 60.0, "runs": [run, other]}
    with open(tmp_path / "main.json", "w") as f:
        json.dump(suite, f)
    text = render.render(str(tmp_path))
    assert "| mf | **0.5000** |" in text  # mse: lower is better, so mf's is the best
    assert "| deepfm | 0.6000 |" in text
    assert "| mf | 0.2500 |" in text or "| mf | **0.2500** |" in text
    assert os.path.exists(tmp_path / "main.png")


def test_benchmark_checks_the_afetler_targets_and_speed(tmp_path):
    """Target verdicts and the speed line, from made-up suite files."""
    def run(label, seed, ndcg, rmse, epoch_seconds=None, fit=100.0):
        return {"label": label, "model": label, "seed": seed, "fit_seconds": fit, "cpus": 2,
                "epoch_seconds": epoch_seconds, "metrics": {
                    "R": dict({c: 0.5 for c in benchmark_report.R_COLUMNS}, rmse=rmse, mse=rmse ** 2,
                              mae=0.7),
                    "T": dict({c: 0.2 for c in benchmark_report.T_COLUMNS}, **{"ndcg@10": ndcg})}}
    machine = {"platform": "p", "cpus": 2, "gpu": False, "python": "3", "tensorflow": "2",
               "tfrs": "0", "pandas": "3"}
    seeds = [run("two_tower", s, 0.40, 0.92) for s in (1, 2, 3)]
    seeds += [run("afetler", s, 0.42 + 0.01 * (s - 2), 0.89) for s in (1, 2, 3)]
    main = [run("two_tower", 42, 0.4, 0.9, epoch_seconds=10.0),
            run("afetler", 42, 0.4, 0.9, epoch_seconds=45.0, fit=290.0)]
    for name, runs in (("seeds", seeds), ("main", main)):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"suite": name, "machine": machine, "wall_seconds": 60.0, "runs": runs}))
    text = render.render(str(tmp_path))
    # afetler wins mse but ties the others at 0.5 (max picks the first: two_tower): 1 of 5.
    assert "best of every model on 1 of the 5 paper columns (**not met**)" in text
    assert "RMSE 0.8900 (<= 0.90: met), MAE 0.7000 (<= 0.71: met)" in text
    assert "NDCG@10 0.4200 (>= 0.42: met), P@10 0.2000 (>= 0.36: **not met**)" in text
    assert "+5.0% NDCG@10 over the two-tower base 0.4000 (>= +5%: met)" in text
    assert "45.0 s vs 10.0 s for the two-tower base (4.5x; target <= 4x: **not met**)" in text
    assert "whole default fit (every stage) 290 s (target < 300 s: met)" in text


def test_benchmark_appends_the_sections_other_commands_wrote(tmp_path):
    """tuning.md and export.md come first in that order, then the rest alphabetically."""
    for name in ("zeta", "export", "tuning"):
        (tmp_path / f"{name}.md").write_text(f"## {name} section\n\nbody of {name}\n")
    text = render.render(str(tmp_path))
    positions = [text.index(f"## {name} section") for name in ("tuning", "export", "zeta")]
    assert positions == sorted(positions)
    assert "body of zeta" in text


def test_benchmark_resume_keeps_finished_runs(tmp_path, monkeypatch):
    """--resume runs only what the suite file lacks; a fresh run starts over."""
    calls = []

    def fake_run_one(config, data, label):
        calls.append((label, config.data.seed))
        return {"label": label, "model": config.model, "seed": config.data.seed, "metrics": {},
                "fit_seconds": 1.0, "wall_seconds": 1.0, "epochs": 1}

    monkeypatch.setattr(benchmark, "run_one", fake_run_one)
    monkeypatch.setattr("afetler_tf.data.load_dataset", lambda source: None)
    models = ["popularity", "mf"]
    benchmark.run_suite("seeds", models, "movielens-100k", str(tmp_path))
    assert len(calls) == 6
    payload = json.loads((tmp_path / "seeds.json").read_text())
    payload["runs"] = payload["runs"][:4]  # as if killed after four runs
    (tmp_path / "seeds.json").write_text(json.dumps(payload))
    calls.clear()
    benchmark.run_suite("seeds", models, "movielens-100k", str(tmp_path), resume=True)
    assert calls == [("mf", 2), ("mf", 3)]
    assert len(json.loads((tmp_path / "seeds.json").read_text())["runs"]) == 6
    with pytest.raises(ValueError, match="drop --resume"):
        benchmark.run_suite("seeds", models, "other-source", str(tmp_path), resume=True)


def test_ablation_takes_its_full_rows_from_the_seeds_suite(tmp_path, monkeypatch):
    """The seeds suite's AFETLER runs are the ablation's "full" rows when made
    with the same configuration; a run of another configuration is re-run."""
    calls = []

    def fake_run_one(config, data, label):
        calls.append((label, config.data.seed))
        return {"label": label, "model": config.model, "seed": config.data.seed, "metrics": {},
                "config": config.to_dict(), "fit_seconds": 1.0, "wall_seconds": 1.0, "epochs": 1}

    monkeypatch.setattr(benchmark, "run_one", fake_run_one)
    monkeypatch.setattr("afetler_tf.data.load_dataset", lambda source: None)
    benchmark.run_suite("seeds", ["afetler"], "movielens-100k", str(tmp_path))
    payload = json.loads((tmp_path / "seeds.json").read_text())
    payload["runs"][2]["config"]["afetler"]["negatives"] = "batch"  # seed 3: an older default
    (tmp_path / "seeds.json").write_text(json.dumps(payload))
    calls.clear()
    benchmark.run_suite("ablation", [], "movielens-100k", str(tmp_path))
    runs = json.loads((tmp_path / "ablation.json").read_text())["runs"]
    assert ("full", 1) not in calls and ("full", 2) not in calls and ("full", 3) in calls
    assert [r.get("from_suite") for r in runs if r["label"] == "full"] == ["seeds", "seeds", None]
    assert len(runs) == 3 * len(benchmark.ABLATIONS)
    payload = json.loads((tmp_path / "ablation.json").read_text())
    payload["machine"] = {"platform": "p", "cpus": 2, "gpu": False, "python": "3", "tensorflow": "2",
                          "tfrs": "0", "pandas": "3"}
    for r in payload["runs"]:
        r["metrics"] = {"R": {"rmse": 0.9, "mae": 0.7, "precision@10": 0.6},
                        "T": {"ndcg@10": 0.4, "precision@10": 0.3, "recall@10": 0.2}}
    (tmp_path / "ablation.json").write_text(json.dumps(payload))
    (tmp_path / "seeds.json").unlink()
    assert "rows are the seeds suite's AFETLER runs" in render.render(str(tmp_path))


def test_harness_lists_suites_and_renders_only_benchmarks_md(tmp_path, monkeypatch, capsys):
    """``python -m experiments render`` writes BENCHMARKS.md and nothing else (no README);
    a section's relative image link points into the store."""
    from experiments import __main__ as harness
    from experiments.registry import SUITES
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "scale.md").write_text("## scale\n\n![scale](scale.png)\n")
    (tmp_path / "README.md").write_text("intro\n")
    monkeypatch.chdir(tmp_path)
    assert harness.main(["render", "--dir", "store", "--output", "OUT.md"]) == 0
    assert "![scale](store/scale.png)" in (tmp_path / "OUT.md").read_text()
    assert "`python -m experiments render`" in (tmp_path / "OUT.md").read_text()
    assert (tmp_path / "README.md").read_text() == "intro\n"
    assert harness.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SUITES)
    assert harness.main(["no-such-suite"]) == 2


def test_harness_dispatches_benchmark_suites_together(monkeypatch):
    calls = []
    monkeypatch.setattr(benchmark, "main", lambda argv: calls.append(argv) or 0)
    from experiments import __main__ as harness
    assert harness.main(["seeds", "ablation", "--resume"]) == 0
    assert calls == [["--suite", "seeds", "ablation", "--resume"]]


def _hold_lock(path):
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write("12345\n")
    handle.flush()
    return handle


def test_a_second_fit_on_the_same_out_is_refused(capsys, monkeypatch, tmp_path):
    """The lock is taken before anything else touches --out (no data read)."""
    def no_training(*args, **kwargs):
        raise AssertionError("trained despite the lock")

    monkeypatch.setattr(fit, "_train", no_training)
    out = tmp_path / "run"
    holder = _hold_lock(out / ".lock")  # another fit, as far as flock is concerned
    try:
        assert fit.main(["--model", "popularity", "--out", str(out), "--quiet"]) == 2
    finally:
        holder.close()
    assert f"another fit is running in {out} (pid 12345)" in capsys.readouterr().err
    assert os.listdir(out) == [".lock"]  # nothing else written


def test_the_lock_of_a_fit_in_another_process_names_its_pid(capsys, monkeypatch, tmp_path):
    import subprocess
    import sys

    def no_training(*args, **kwargs):
        raise AssertionError("trained despite the lock")

    monkeypatch.setattr(fit, "_train", no_training)
    out = tmp_path / "run"
    script = ("import sys; from afetler_tf.runs import RunFolder; "
              "lock = RunFolder(sys.argv[1]).lock(); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert fit.main(["--model", "popularity", "--out", str(out), "--quiet"]) == 2
        assert f"another fit is running in {out} (pid {proc.pid})" in capsys.readouterr().err
    finally:
        proc.kill()  # a kill releases the lock too
        proc.wait()
    RunFolder(str(out)).lock().close()


def test_the_lock_is_released_when_fit_ends_or_crashes(monkeypatch, tmp_path):
    out = tmp_path / "run"

    def crash(*args, **kwargs):
        raise RuntimeError("crashed")

    monkeypatch.setattr(fit, "_train", crash)
    with pytest.raises(RuntimeError, match="crashed"):
        fit.main(["--model", "popularity", "--out", str(out), "--quiet"])
    _hold_lock(out / ".lock").close()  # free again
    monkeypatch.setattr(fit, "_train", lambda *args: 2)  # fails before training: no run left
    assert fit.main(["--model", "popularity", "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert not out.exists()


def test_fit_ignores_its_lock_file_when_checking_out(tmp_path):
    out = tmp_path / "run"
    RunFolder(str(out)).lock().close()
    assert RunFolder(str(out)).check({"model": "afetler"}) == "new"


class _FixedScores:
    """A stand-in model: item i{j} scores j (no training needed)."""
    name = "fixed"

    def score_all(self, user_ids, item_ids):
        import numpy as np
        return np.array([[float(i[1:]) for i in item_ids] for _ in user_ids])


def test_recommend_caps_k_at_the_unseen_items(tiny_data, tiny_split):
    import numpy as np
    seen = recommend.seen_items(tiny_split, "u1")
    table = recommend.recommend(_FixedScores(), tiny_data, tiny_split, "u1", k=100000)
    assert len(table) == len(tiny_data.items) - len(seen) and table.attrs["capped"]
    assert not set(table["item_id"]) & seen and np.isfinite(table["score"]).all()
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    small = recommend.recommend(_FixedScores(), tiny_data, tiny_split, "u1", k=3)
    assert len(small) == 3 and not small.attrs["capped"]
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            recommend.recommend(_FixedScores(), tiny_data, tiny_split, "u1", k=k)


def test_recommend_cli_says_when_k_is_capped(capsys, monkeypatch, tiny_data, tiny_split):
    from types import SimpleNamespace
    run = SimpleNamespace(model=_FixedScores(), data=tiny_data, split=tiny_split)
    monkeypatch.setattr("afetler_tf.runs.training_run.load_run", lambda path: run)
    assert recommend.main(["--run", "r", "--user", "u1", "--k", "100000"]) == 0
    out = capsys.readouterr().out
    unseen = len(tiny_data.items) - len(recommend.seen_items(tiny_split, "u1"))
    assert f"top {unseen} for user u1 (--k 100000 capped at the {unseen} of the 60 catalogue items" in out
    assert "inf" not in out


@pytest.mark.parametrize("flags, message", [(["--user", "u1", "--k", "0"], "--k must be >= 1, got 0"),
                                            (["--user", "u1", "--k", "-2"], "--k must be >= 1, got -2"),
                                            (["--item", "i1", "--users", "0"], "--users must be >= 1")])
def test_recommend_refuses_k_below_one_before_loading(capsys, monkeypatch, flags, message):
    def no_load(path):
        raise AssertionError("the run was loaded")

    monkeypatch.setattr("afetler_tf.runs.training_run.load_run", no_load)
    assert recommend.main(["--run", "r", *flags]) == 2
    assert message in capsys.readouterr().err
