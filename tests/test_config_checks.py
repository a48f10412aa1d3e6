"""Config values are typed and range-checked when a config is built (JSON file,
--set, Config.replace), so a bad value is refused before any data is read."""

import dataclasses
import json

import pytest

from afetler_tf import config_fields as cfg
from afetler_tf import fit
from afetler_tf.config import MODELS, Config, parse_setting


def _resolve(*argv):
    return fit.resolve_config(fit.parse_args(list(argv)))


@pytest.mark.parametrize("text, expected", [
    ("False", False), ("false", False), ("0", False), ("True", True), ("true", True), ("1", True)])
def test_set_parses_booleans(text, expected):
    config = _resolve("--set", f"afetler.fusion={text}")
    assert config.afetler.fusion is expected


def test_set_types_numbers_lists_null_and_strings():
    config = _resolve("--set", "train.learning_rate=1", "--set", "tower.tower_units=16,8",
                      "--set", "tower.ranking_units=[16]", "--set", "afetler.temperature=null",
                      "--set", "data.source=/some/folder", "--set", 'train.optimizer="lazy_adam"',
                      "--set", "deepfm.hidden_units=[]")
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.tower.tower_units == (16, 8) and config.tower.ranking_units == (16,)
    assert config.afetler.temperature is None and config.data.source == "/some/folder"
    assert config.train.optimizer == "lazy_adam" and config.deepfm.hidden_units == ()


def test_preset_fast_sets_afetlers_switches_and_set_wins():
    config = _resolve("--preset", "fast")
    assert (config.afetler.negatives, config.afetler.target_attention_stage) == ("batch", "ranking")
    assert config.afetler.mcau and config.afetler.item_item  # every component stays
    config = _resolve("--preset", "fast", "--set", "afetler.target_attention_stage=joint")
    assert (config.afetler.negatives, config.afetler.target_attention_stage) == ("batch", "joint")
    with pytest.raises(ValueError, match="--preset fast sets AFETLER's switches; model 'mf'"):
        _resolve("--preset", "fast", "--model", "mf")


@pytest.mark.parametrize("item, message", [
    ("train.epochs=abc", "train.epochs must be an integer, got 'abc'"),
    ("train.epochs=0", "train.epochs must be an integer >= 1, got 0"),
    ("train.batch_size=0", "train.batch_size must be an integer >= 1, got 0"),
    ("train.learning_rate=0", "train.learning_rate must be a number > 0"),
    ("train.learning_rate=nan", "train.learning_rate must be a finite number"),
    ("train.patience=-1", "train.patience must be an integer >= 0"),
    ("afetler.fusion=maybe", "afetler.fusion must be a boolean (true/false/1/0), got 'maybe'"),
    ("afetler.temperature=-1", "afetler.temperature must be a number > 0 or null"),
    ("data.test_fraction=1", "data.test_fraction must be a number in [0, 1)"),
    ("data.history_length=0", "data.history_length must be an integer >= 1"),
    ("data.seed=-1", "data.seed must be an integer in [0, 2**32)"),
    ("tower.tower_units=[]", "tower.tower_units must be a non-empty list of integers >= 1"),
    ("tower.tower_units=[16,0]", "tower.tower_units must be a non-empty list of integers >= 1"),
    ("tower.embedding_dim=1.5", "tower.embedding_dim must be an integer, got '1.5'"),
    ("mf.epochs=0", "mf.epochs must be an integer >= 1"),
    ("mf.l2=-0.1", "mf.l2 must be a number >= 0"),
    ("deepfm.dropout=1.0", "deepfm.dropout must be a number in [0, 1)"),
    ("deepfm.batch_size=-4", "deepfm.batch_size must be an integer >= 1"),
    ("ease.penalty=0", "ease.penalty must be a number > 0"),
    ("gan.validation_items=0", "gan.validation_items must be a number in (0, 1)"),
    ("gan.epochs=0", "gan.epochs must be an integer >= 1"),
    ("afetler.num_heads=0", "afetler.num_heads must be an integer >= 1"),
    ("afetler.negatives=all", "afetler.negatives must be one of batch, catalogue"),
    ("train.optimizer=sgd", "train.optimizer must be one of adam, lazy_adam"),
])
def test_fit_refuses_bad_values_before_reading_data(capsys, monkeypatch, item, message):
    def no_data(*args, **kwargs):
        raise AssertionError("data read despite a bad value")

    monkeypatch.setattr("afetler_tf.runs.training_run.run", no_data)
    assert fit.main(["--set", item, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")


@pytest.mark.parametrize("section, name, value, message", [
    ("train", "epochs", "3", "train.epochs must be an integer, got '3' (str)"),
    ("train", "epochs", True, "train.epochs must be an integer, got True (bool)"),
    ("afetler", "fusion", "False", "afetler.fusion must be a boolean (true or false), got 'False'"),
    ("afetler", "fusion", 0, "afetler.fusion must be a boolean (true or false), got 0 (int)"),
    ("tower", "tower_units", "64,32", "tower.tower_units must be a list of integers, got '64,32'"),
    ("mf", "learning_rate", "0.1", "mf.learning_rate must be a number, got '0.1' (str)"),
    ("data", "source", 5, "data.source must be a string, got 5 (int)"),
    ("afetler", "temperature", "x", "afetler.temperature must be a number or null"),
])
def test_json_config_values_are_typed(tmp_path, section, name, value, message):
    raw = Config().to_dict()
    raw[section][name] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError) as e:
        Config.from_json(str(path))
    assert str(e.value).startswith(f"{path}: {message}")


def test_json_config_accepts_ints_for_floats_and_lists_for_tuples():
    raw = Config().to_dict()
    raw["train"]["learning_rate"], raw["gan"]["hidden_units"] = 1, [8, 4]
    config = Config.from_dict(raw)
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.gan.hidden_units == (8, 4)
    assert Config.from_dict(json.loads(config.to_json())) == config


def test_python_callers_are_checked_too():
    with pytest.raises(ValueError, match=r"train.epochs must be an integer >= 1, got 0"):
        Config().replace(train={"epochs": 0})
    assert Config().replace(tower={"tower_units": [16, 8]}).tower.tower_units == (16, 8)


def test_every_default_is_valid_and_every_field_has_a_known_type():
    config = Config()
    for section in cfg.RANGES:
        kinds = cfg.field_kinds(type(getattr(config, section)))
        assert set(cfg.RANGES[section]) <= set(kinds), section
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            assert cfg.field_kinds(type(value))


def test_parse_setting_errors_name_the_field():
    with pytest.raises(ValueError, match=r"gan.enabled must be a boolean \(true/false/1/0\), got 'on'"):
        parse_setting("gan", "enabled", "on")
    with pytest.raises(ValueError, match=r"deepfm.hidden_units must be a list of integers"):
        parse_setting("deepfm", "hidden_units", "[1, true]")


@pytest.mark.parametrize("model, section", [
    ("afetler", "train"), ("two_tower", "train"), ("content_tower", "train"), ("mf", "mf"),
    ("deepfm", "deepfm")])
def test_epochs_sets_the_chosen_models_epochs(model, section):
    config = _resolve("--model", model, "--epochs", "2")
    assert getattr(config, section).epochs == 2
    others = {"train", "mf", "deepfm"} - {section}
    assert all(getattr(config, s).epochs == getattr(Config(), s).epochs for s in others)


def test_set_after_epochs_still_wins():
    assert _resolve("--model", "mf", "--epochs", "2", "--set", "mf.epochs=5").mf.epochs == 5


@pytest.mark.parametrize("model", ["popularity", "random", "category_popularity", "content_bias", "ease"])
def test_epochs_is_refused_for_models_without_epochs(capsys, model):
    assert fit.main(["--model", model, "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert f"--epochs: model {model!r} is fitted in one pass" in err and "drop --epochs" in err


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_epochs_below_one_is_refused(capsys, tmp_path, epochs):
    out = tmp_path / "run"
    assert fit.main(["--epochs", epochs, "--out", str(out), "--quiet"]) == 2
    assert f"--epochs must be >= 1, got {epochs}" in capsys.readouterr().err
    assert not out.exists()  # no "finished" untrained run


def test_epochs_models_match_the_models_that_train_by_epochs():
    """The models --epochs applies to are exactly those whose config section has epochs
    and whose code trains by epochs (the others are fitted in one pass)."""
    assert set(fit.EPOCHS_SECTION) <= set(MODELS)
    assert set(fit.EPOCHS_SECTION.values()) == {"train", "mf", "deepfm"}
