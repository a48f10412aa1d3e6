"""Robustness of publishing an export: kills while publishing, file modes.

- ``publish_set`` killed at any file-system step leaves, after
  ``clean_stale``, every model with the complete old set or the complete
  new one (a forked child is killed with ``os._exit`` at step N).
- Written files are 0644 and folders 0755 under umask 022.
"""

import json
import os
import stat
import sys
import traceback

import numpy as np
import pytest

from export import layout, serving_config, writing


# -- publishing a set: killed at every step ------------------------------------------------------

KINDS = ("query", "candidate", "index", "ranker")
PRIMITIVES = ("rename", "replace", "link", "unlink", "remove", "rmdir")


def _write_model(marker):
    def write(folder):
        os.makedirs(os.path.join(folder, "variables"))
        for name in ("saved_model.pb", "variables/variables.index", "export.json"):
            with open(os.path.join(folder, name), "w") as f:
                f.write(marker)
    return write


def _complete(folder) -> str:
    """The marker of a complete fake version folder (AssertionError if incomplete)."""
    texts = set()
    for name in ("saved_model.pb", "variables/variables.index", "export.json"):
        with open(os.path.join(folder, name)) as f:
            texts.add(f.read())
    assert len(texts) == 1, (folder, texts)
    return texts.pop()


def _publish_killed_at(base, version, overwrite, step) -> int:
    """Stages and publishes 'new' for every model in a forked child that dies
    (os._exit, no clean-up of any kind) just before its ``step``-th file-system
    change; returns the child's exit code (0: it finished before that step)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            dirs = [os.path.join(base, f"m_{kind}") for kind in KINDS]
            staged = {d: layout.stage(d, version, _write_model("new")) for d in dirs}
            count = [0]

            def killing(real):
                def call(*args, **kwargs):
                    count[0] += 1
                    if count[0] == step:
                        os._exit(9)
                    return real(*args, **kwargs)
                return call
            for name in PRIMITIVES:
                setattr(os, name, killing(getattr(os, name)))
            layout.publish_set(base, staged, version, overwrite,
                               config=lambda: (os.path.join(base, "models.config"), f"new {version}\n"))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _set_up(base, versions):
    for kind in KINDS:
        for v in versions:
            model_dir = os.path.join(base, f"m_{kind}")
            layout.publish(layout.stage(model_dir, v, _write_model("old")), model_dir, v)
    writing.write_text(os.path.join(base, "models.config"), "old\n")


@pytest.mark.parametrize("overwrite", [True, False])
def test_publish_killed_at_every_step_leaves_the_old_or_the_new_set(tmp_path, overwrite):
    version = 1 if overwrite else 2  # --overwrite of 1, or a new version 2 beside 1
    outcomes = set()
    for step in range(1, 200):
        base = str(tmp_path / f"step{step}")
        _set_up(base, [1])
        code = _publish_killed_at(base, version, overwrite, step)
        assert code in (0, 9), f"the child failed at step {step} (exit {code})"
        for kind in KINDS:  # what the next export does first
            layout.clean_stale(os.path.join(base, f"m_{kind}"))
        assert not os.path.exists(os.path.join(base, layout.JOURNAL))
        assert [n for n in os.listdir(base) if n.startswith(".")] == [], step  # no temp files
        markers = set()
        for kind in KINDS:
            model_dir = os.path.join(base, f"m_{kind}")
            assert [n for n in os.listdir(model_dir) if not n.isdigit()] == [], (step, os.listdir(model_dir))
            if overwrite:
                assert layout.versions(model_dir) == [1], step
                markers.add(_complete(os.path.join(model_dir, "1")))
            else:
                assert _complete(os.path.join(model_dir, "1")) == "old"
                assert layout.versions(model_dir) in ([1], [1, 2]), step
                markers.add(_complete(os.path.join(model_dir, "2")) if 2 in layout.versions(model_dir) else "old")
        assert len(markers) == 1, f"a mixed set after a kill at step {step}: {markers}"
        with open(os.path.join(base, "models.config")) as f:
            config = f.read()
        assert config == ("new %d\n" % version if markers == {"new"} else "old\n"), step
        outcomes.add(markers.pop())
        if code == 0:
            break
    else:
        raise AssertionError("the publish never finished")
    assert step > 8 and outcomes == {"old", "new"}  # some kills rolled back, later ones finished


def test_a_failed_rename_rolls_the_set_back_at_once(tmp_path, monkeypatch):
    base = str(tmp_path)
    _set_up(base, [1])
    dirs = [os.path.join(base, f"m_{kind}") for kind in KINDS]
    staged = {d: layout.stage(d, 1, _write_model("new")) for d in dirs}
    real, calls = os.rename, [0]

    def failing(src, dst):
        calls[0] += 1
        if calls[0] == 5:  # query and candidate swapped, index moved aside
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="No space"):
        layout.publish_set(base, staged, 1, overwrite=True)
    monkeypatch.setattr(os, "rename", real)
    for d in dirs:
        assert os.listdir(d) == ["1"] and _complete(os.path.join(d, "1")) == "old"
    assert not os.path.exists(os.path.join(base, layout.JOURNAL))


def test_backups_are_restored_or_removed_by_clean_stale(tmp_path):
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    for name in (f".old-3-{dead}", f".tmp-4-old-{dead}", f".old-5-{dead}", "5", f".old-6-{os.getppid()}"):
        _write_model(name)(str(tmp_path / name))
    removed = layout.clean_stale(str(tmp_path))
    assert removed == [f".old-5-{dead}"]  # 5 is in place: its backup goes
    assert sorted(os.listdir(tmp_path)) == sorted(["3", "4", "5", f".old-6-{os.getppid()}"])
    assert _complete(str(tmp_path / "3")) == f".old-3-{dead}"  # the version's only copy, back


def test_a_live_or_broken_journal_is_left_alone_and_named(tmp_path):
    base = str(tmp_path)
    _set_up(base, [1])
    model_dir = os.path.join(base, "m_query")
    journal = {"pid": os.getppid(), "version": 2, "state": "publishing", "models": []}
    (tmp_path / layout.JOURNAL).write_text(json.dumps(journal))
    assert layout.recover(base) is None  # its export is running
    staged = layout.stage(model_dir, 2, _write_model("new"))
    with pytest.raises(FileExistsError, match=f"Another export \\(pid {os.getppid()}\\) is publishing"):
        layout.publish_set(base, {model_dir: staged}, 2)
    (tmp_path / layout.JOURNAL).write_text("{not json")
    with pytest.raises(ValueError, match="publish.json is not valid JSON"):
        layout.clean_stale(model_dir)


def test_promote_finishes_a_committed_set_first(tmp_path):
    base = str(tmp_path)
    _set_up(base, [1])
    dirs = [os.path.join(base, f"m_{kind}") for kind in KINDS]
    serving_config.update(base, dirs, 1)
    staged = {d: layout.stage(d, 2, _write_model("new")) for d in dirs}
    config = lambda: serving_config.render_update(base, dirs, 2)  # noqa: E731
    assert _publish_killed_at_commit(base, staged, config) == "finished"
    entries = serving_config.read(os.path.join(base, "models.config"))
    assert entries["m_query"]["labels"] == {"stable": 1}
    assert serving_config.promote(base) == 2
    assert serving_config.read(os.path.join(base, "models.config"))["m_index"]["labels"] == {
        "stable": 2, "previous": 1}


def _publish_killed_at_commit(base, staged, config):
    """publish_set as far as its committed journal (the models.config write never happens)."""
    finish = layout._finish
    try:
        layout._finish = lambda *a: None  # noqa: E731  (dies right after committing)
        layout.publish_set(base, staged, 2, config=config)
    finally:
        layout._finish = finish
    with open(os.path.join(base, layout.JOURNAL)) as f:
        assert json.load(f)["state"] == "committed"
    return layout.recover(base)


# -- file modes ---------------------------------------------------------------------------------

def _modes(root) -> dict:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return out


def test_written_files_are_readable_by_the_server(tmp_path):
    old = os.umask(0o022)
    try:
        base = str(tmp_path)
        _set_up(base, [1])
        serving_config.update(base, [os.path.join(base, f"m_{k}") for k in KINDS], 1)
        writing.write_json(os.path.join(base, "x.json"), {"a": np.float32(1.5), "b": float("nan")})
    finally:
        os.umask(old)
    modes = _modes(base)
    assert modes["models.config"] == 0o644 and modes["x.json"] == 0o644
    assert {m for p, m in modes.items() if os.path.isdir(os.path.join(base, p))} == {0o755}
    assert {m for p, m in modes.items() if os.path.isfile(os.path.join(base, p))} == {0o644}
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1.5, "b": None}


def test_a_real_export_is_readable_and_overwrite_failures_keep_the_old_version(
        tmp_path_factory, tiny_data, tmp_path, monkeypatch):
    from export.exporter import export_run
    from test_export_support import tiny_run

    run_dir, base = tiny_run(tmp_path_factory, tiny_data), str(tmp_path / "models")
    old = os.umask(0o022)
    try:
        result = export_run(run_dir, base, verbose=0)
    finally:
        os.umask(old)
    modes = _modes(base)
    assert modes["models.config"] == 0o644
    assert modes["afetler_index/1/export.json"] == 0o644 and modes["afetler_index/1/saved_model.pb"] == 0o644
    assert {m for p, m in modes.items() if os.path.isdir(os.path.join(base, p))} == {0o755}
    assert {m for p, m in modes.items() if os.path.isfile(os.path.join(base, p))} == {0o644}
    assert not os.path.exists(os.path.join(base, layout.JOURNAL))

    from export.local_serving import LocalModel
    ranker = LocalModel(result.paths["ranker"])  # the real modules call the check in prepare
    feed = {}
    for name, spec in ranker.input_specs().items():
        value = "1" if spec.dtype.name == "string" else 1.0
        feed[name] = [[value]] * 3 if spec.shape.rank == 2 else [value] * (2 if name == "user_id" else 3)
    error = ranker.predict_tensors(feed)["error"]
    assert "Inputs must share one batch size" in error and "[user_id] [2]" in error, error

    before = {k: os.stat(os.path.join(p, "saved_model.pb")).st_mtime_ns for k, p in result.paths.items()}
    config = (tmp_path / "models" / "models.config").read_text()
    real, failed = os.rename, []

    def failing(src, dst):  # the candidate's new copy cannot be renamed in
        if not failed and "afetler_candidate" in src and os.path.basename(src).startswith(".tmp-"):
            failed.append(src)
            raise OSError(5, "Input/output error")
        return real(src, dst)
    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="Input/output error"):
        export_run(run_dir, base, version=1, overwrite=True, verbose=0)
    monkeypatch.setattr(os, "rename", real)
    for kind, path in result.paths.items():
        assert os.listdir(os.path.dirname(path)) == ["1"]
        assert os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns == before[kind]
    assert (tmp_path / "models" / "models.config").read_text() == config
