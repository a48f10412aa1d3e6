"""``python -m export`` versions: atomic under SIGKILL, incrementing, refusing, overwriting."""

import os
import signal
import subprocess
import sys
import time
import types

import pytest

from afetler_tf.config import Config
from export import layout, serving_config
from export.__main__ import main
from export.exporter import export_run
from test_export_support import REPO, python_env, tiny_run

MODELS = ("afetler_query", "afetler_candidate", "afetler_index", "afetler_ranker")


def _entries(base) -> dict:
    with open(os.path.join(base, "models.config")) as f:
        config = serving_config.parse(f.read())
    return {c.name: c for c in config.model_config_list.config}


def _wait_for_pause(proc, deadline_s: float) -> str:
    """The temp folder named by the export's ``paused`` line."""
    start = time.monotonic()
    for line in proc.stdout:
        if line.startswith("paused "):
            return line.split(" ", 1)[1].strip()
        if time.monotonic() - start > deadline_s:
            break
    raise AssertionError(f"the export never paused (exit code {proc.poll()})")


@pytest.mark.timeout(300)
def test_killed_export_publishes_nothing_and_the_next_export_cleans_up(tmp_path_factory, tiny_data,
                                                                        tmp_path):
    run_dir, base = tiny_run(tmp_path_factory, tiny_data), str(tmp_path / "models")
    env = dict(python_env(), **{layout.PAUSE_ENV: "120"})
    proc = subprocess.Popen([sys.executable, "-m", "export", "--run", run_dir, "--base", base],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        staged = _wait_for_pause(proc, deadline_s=240)
        assert os.path.exists(os.path.join(staged, "saved_model.pb"))  # partly written export
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = [name for name in os.listdir(os.path.dirname(staged))]
    assert left == [os.path.basename(staged)] and not left[0].isdigit()  # TF Serving ignores it
    assert all(layout.versions(os.path.join(base, m)) == [] for m in MODELS)
    assert not os.path.exists(os.path.join(base, "models.config"))

    assert main(["--run", run_dir, "--base", base]) == 0
    for m in MODELS:
        assert sorted(os.listdir(os.path.join(base, m))) == ["1"]  # the stale temp folder is gone


def test_versions_increment_refuse_and_overwrite(tmp_path_factory, tiny_data, tmp_path, capsys):
    run_dir, base = tiny_run(tmp_path_factory, tiny_data), str(tmp_path / "models")
    assert main(["--run", run_dir, "--base", base]) == 0
    assert main(["--run", run_dir, "--base", base]) == 0
    entry = _entries(base)["afetler_index"]  # version 2 loads beside stable, no label moves
    assert dict(entry.version_labels) == {"stable": 1}
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert main(["--base", base, "--promote"]) == 0
    for entry in _entries(base).values():
        assert dict(entry.version_labels) == {"stable": 2, "previous": 1}
        assert list(entry.model_version_policy.specific.versions) == [1, 2]

    capsys.readouterr()
    assert main(["--run", run_dir, "--base", base, "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert "Version 1 already exists" in err and "--overwrite" in err
    before = os.stat(os.path.join(base, "afetler_index", "1", "saved_model.pb")).st_mtime_ns
    assert main(["--run", run_dir, "--base", base, "--version", "1", "--overwrite",
                 "--serving-base", "/models"]) == 0
    after = os.stat(os.path.join(base, "afetler_index", "1", "saved_model.pb")).st_mtime_ns
    assert after != before
    entry = _entries(base)["afetler_index"]
    assert entry.base_path == "/models/afetler_index"
    assert dict(entry.version_labels) == {"stable": 2, "previous": 1}
    assert all(layout.versions(os.path.join(base, m)) == [1, 2] for m in MODELS)


def test_scann_without_the_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "scann", None)  # import scann -> ImportError
    with pytest.raises(ImportError, match="pip install --no-deps scann==1.4.2"):
        export_run("unused-run-dir", str(tmp_path), index="scann")


def test_runs_without_towers_and_bad_options_are_refused(tmp_path):
    mf = types.SimpleNamespace(config=Config(model="mf"), model=types.SimpleNamespace())
    with pytest.raises(ValueError, match="no query/candidate towers"):
        export_run(mf, str(tmp_path))
    with pytest.raises(ValueError, match="index must be one of"):
        export_run(mf, str(tmp_path), index="annoy")
    assert main(["--run", str(tmp_path / "absent"), "--base", str(tmp_path)]) == 2
