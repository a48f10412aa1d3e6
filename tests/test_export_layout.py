"""The TF Serving folder layout and models.config, without a model."""

import os

import pytest

from export import layout, serving_config


def _write(folder):
    os.makedirs(folder)
    with open(os.path.join(folder, "saved_model.pb"), "w") as f:
        f.write("x")


def test_versions_are_the_integer_folders(tmp_path):
    for name in ("1", "7", ".tmp-8-123", "notes", "3x"):
        os.makedirs(tmp_path / "m" / name)
    (tmp_path / "m" / "9").write_text("a file, not a version")
    assert layout.versions(str(tmp_path / "m")) == [1, 7]
    assert layout.versions(str(tmp_path / "absent")) == []
    assert layout.next_version([str(tmp_path / "m"), str(tmp_path / "absent")]) == 8
    assert layout.next_version([str(tmp_path / "absent")]) == 1


def test_check_free_refuses_an_existing_version_unless_overwriting(tmp_path):
    os.makedirs(tmp_path / "a" / "2")
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    with pytest.raises(FileExistsError, match="--overwrite.*version 3"):
        layout.check_free(dirs, 2, overwrite=False)
    layout.check_free(dirs, 2, overwrite=True)
    layout.check_free(dirs, 3, overwrite=False)
    with pytest.raises(ValueError, match="positive"):
        layout.check_free(dirs, 0, overwrite=False)


def test_stage_then_publish_renames_into_place(tmp_path):
    model_dir = str(tmp_path / "m")
    staged = layout.stage(model_dir, 1, _write)
    assert os.path.basename(staged).startswith(layout.TMP_PREFIX)
    assert layout.versions(model_dir) == []  # nothing a server could load yet
    final = layout.publish(staged, model_dir, 1)
    assert os.listdir(model_dir) == ["1"] and os.path.exists(os.path.join(final, "saved_model.pb"))
    with pytest.raises(FileExistsError):
        layout.publish(layout.stage(model_dir, 1, _write), model_dir, 1)
    layout.discard([os.path.join(model_dir, n) for n in os.listdir(model_dir) if n != "1"])
    assert os.listdir(model_dir) == ["1"]


def test_publish_with_overwrite_replaces_the_version(tmp_path):
    model_dir = str(tmp_path / "m")
    layout.publish(layout.stage(model_dir, 1, _write), model_dir, 1)

    def write_b(folder):
        _write(folder)
        (tmp_path / "m" / os.path.basename(folder) / "b").write_text("new")
    layout.publish(layout.stage(model_dir, 1, write_b), model_dir, 1, overwrite=True)
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert sorted(os.listdir(os.path.join(model_dir, "1"))) == ["b", "saved_model.pb"]


def test_a_failed_write_leaves_nothing(tmp_path):
    def broken(folder):
        _write(folder)
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        layout.stage(str(tmp_path / "m"), 1, broken)
    assert os.listdir(tmp_path / "m") == []


def test_clean_stale_keeps_live_exports_only(tmp_path):
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    for name in (f".tmp-3-{dead}", f".tmp-old-3-{dead}", f".tmp-3-{os.getppid()}", "2"):
        os.makedirs(tmp_path / name)
    removed = layout.clean_stale(str(tmp_path))
    assert sorted(removed) == sorted([f".tmp-3-{dead}", f".tmp-old-3-{dead}"])
    assert sorted(os.listdir(tmp_path)) == sorted([f".tmp-3-{os.getppid()}", "2"])


def test_models_config_parses_with_the_serving_protos():
    text = serving_config.render([
        serving_config.ServedModel("afetler_query", "/srv/models/afetler_query", (1, 2),
                                   {"stable": 2, "previous": 1}),
        serving_config.ServedModel("afetler_index", '/srv/odd "dir"/afetler_index', (1,), {"stable": 1})])
    config = serving_config.parse(text)
    query, index = config.model_config_list.config
    assert (query.name, query.base_path, query.model_platform) == (
        "afetler_query", "/srv/models/afetler_query", "tensorflow")
    assert list(query.model_version_policy.specific.versions) == [1, 2]
    assert dict(query.version_labels) == {"stable": 2, "previous": 1}
    assert index.base_path == '/srv/odd "dir"/afetler_index'
    assert dict(index.version_labels) == {"stable": 1}
    with pytest.raises(ValueError):
        serving_config.render([])


def _served(base) -> dict:
    with open(os.path.join(base, "models.config")) as f:
        config = serving_config.parse(f.read())
    return {c.name: (list(c.model_version_policy.specific.versions), dict(c.version_labels), c.base_path)
            for c in config.model_config_list.config}


def test_rollout_loads_first_and_moves_labels_on_promotion(tmp_path):
    base, dirs = str(tmp_path), [str(tmp_path / "m_query"), str(tmp_path / "m_index")]

    def export(version, **kwargs):
        for d in dirs:
            os.makedirs(os.path.join(d, str(version)))
        serving_config.update(base, dirs, version, **kwargs)

    export(1, serving_base="/models")
    assert _served(base)["m_index"] == ([1], {"stable": 1}, "/models/m_index")
    export(2)  # a label in use only moves to a loaded version: load 2 first
    assert _served(base)["m_index"] == ([1, 2], {"stable": 1}, "/models/m_index")
    assert serving_config.promote(base) == 2
    assert _served(base)["m_query"] == ([1, 2], {"stable": 2, "previous": 1}, "/models/m_query")
    export(3)
    assert _served(base)["m_query"][:2] == ([1, 2, 3], {"stable": 2, "previous": 1})
    export(4, promote=True)
    assert _served(base)["m_query"][:2] == ([2, 4], {"stable": 4, "previous": 2})
    with pytest.raises(ValueError, match="not on disk"):
        serving_config.promote(base, version=9)
    with pytest.raises(FileNotFoundError):
        serving_config.promote(str(tmp_path / "empty"))
