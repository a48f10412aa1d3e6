"""tuning/: search space, tuners, resumable searches and the CLI, on tiny data.

One test trains real (tiny) AFETLER models through a resumed two-trial
search; the others replace the trial's training with a fake (``fake_training``)
so the search logic (CLI, resume, budgets, errors) is cheap to check.
"""

import json
import math
import os

import pandas as pd
import pytest

from afetler_tf import fit
from afetler_tf.config import Config
from afetler_tf.data.schema import Split
from tuning import objective, search
from tuning.space import NAMES, SearchSpace, parse_fixed

# KerasTuner 1.4.8 calls threading.currentThread() on every oracle operation.
pytestmark = pytest.mark.filterwarnings("ignore:currentThread|getName:DeprecationWarning")


def tiny_base(**train):
    return Config(model="afetler").replace(
        train=dict({"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "patience": 2}, **train),
        tower={"embedding_dim": 8, "tower_units": (16, 8), "ranking_units": (16,)})


class PoisonedFrame:
    """Stands in for split.test: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the tuner read the test split (.{name})")

    def __len__(self):
        raise AssertionError("the tuner read the test split (len)")

    def __getitem__(self, key):
        raise AssertionError("the tuner read the test split ([...])")


def poisoned(split):
    return Split(split.kind, split.seed, split.train, split.validation, PoisonedFrame())


@pytest.fixture
def fake_training(monkeypatch):
    """Replaces training with a metric that depends on the learning rate; records each config."""
    seen = []

    def run_config(config, data, trial_split, rmse_weight=1.0, relevant="all", verbose=0,
                   objective_name="combined"):
        seen.append(config)
        ndcg = 1.0 - abs(math.log10(config.train.learning_rate) + 2.0)
        return {"val_ndcg@10": ndcg, "val_rmse": 1.0, "val_combined": ndcg - rmse_weight,
                "epochs": float(config.train.epochs), "seconds": 0.0}

    monkeypatch.setattr(objective, "run_config", run_config)
    return seen


# --- a real (tiny) search ----------------------------------------------------------------------

def test_search_completes_resumes_and_writes_a_config_fit_accepts(tiny_data, tiny_split, tmp_path):
    out = str(tmp_path / "search")
    split = poisoned(tiny_split)  # the search must never touch split.test
    first = search.search(tiny_base(), out, "bayesian", "combined", max_trials=1, data=tiny_data,
                          split=split, epochs_cap=2, verbose=0)
    assert first.trials_run == ["0"]
    second = search.search(tiny_base(), out, "bayesian", "combined", max_trials=2, data=tiny_data,
                           split=split, epochs_cap=2, verbose=0)
    assert second.trials_run == ["1"]  # trial 0 is not repeated

    table = pd.read_csv(os.path.join(out, "trials.csv"), dtype={"trial": str})
    assert table.trial.tolist() == ["0", "1"] and (table.status == "COMPLETED").all()
    assert table.value.notna().all() and set(table.objective) == {"val_combined"}
    assert table.learning_rate[0] == pytest.approx(0.01)  # trial 0 is the base config
    assert "| trial | status | val_combined" in open(os.path.join(out, "trials.md")).read()

    path = os.path.join(out, "best_config.json")
    config = fit.resolve_config(fit.parse_args(["--config", path]))
    assert config == Config.from_dict(second.best_config.to_dict())
    best = table.loc[table.value.idxmax()]
    assert config.train.learning_rate == pytest.approx(best.learning_rate)
    assert config.tower.tower_units == tuple(int(u) for u in str(best.tower_units).split(","))


# --- search logic with fake training ------------------------------------------------------------

def write_folder(data, folder):
    """The tiny data set as a folder of CSV files (what --data PATH reads)."""
    os.makedirs(folder)
    data.interactions.to_csv(os.path.join(folder, "interactions.csv"), index=False)
    data.users.to_csv(os.path.join(folder, "users.csv"), index=False)
    items = data.items.assign(categories=data.items.categories.map("|".join))
    items.to_csv(os.path.join(folder, "items.csv"), index=False)


def test_cli_hyperband_search_on_a_data_folder(tiny_data, tmp_path, capsys, fake_training):
    folder, out = str(tmp_path / "logs"), str(tmp_path / "hb")
    write_folder(tiny_data, folder)
    tiny_base().to_json(str(tmp_path / "base.json"))
    code = search.main(["--tuner", "hyperband", "--max-trials", "2", "--objective", "ndcg",
                        "--epochs", "2", "--out", out, "--config", str(tmp_path / "base.json"),
                        "--data", folder, "--only", "learning_rate,temperature"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trial 1/2 (id 0)" in printed and "trial 2/2 (id 1) done: val_ndcg@10" in printed
    table = pd.read_csv(os.path.join(out, "trials.csv"))
    assert len(table) == 2 and (table["epochs"] == table["tuner/epochs"]).all()
    config = Config.from_json(os.path.join(out, "best_config.json"))
    assert config.data.source == folder and config.tower.tower_units == (16, 8)


def test_an_interrupted_trial_is_rerun_not_repeated(tiny_data, tiny_split, tmp_path, fake_training,
                                                    monkeypatch):
    out = str(tmp_path / "s")
    fake = objective.run_config

    def interrupted(config, *args, **kwargs):
        if len(fake_training) == 1:  # the second trial is killed (Ctrl-C) mid-way
            raise KeyboardInterrupt
        return fake(config, *args, **kwargs)

    monkeypatch.setattr(objective, "run_config", interrupted)
    with pytest.raises(KeyboardInterrupt):
        search.search(tiny_base(), out, "random", "ndcg", 3, data=tiny_data, split=tiny_split, verbose=0)
    monkeypatch.setattr(objective, "run_config", fake)
    result = search.search(tiny_base(), out, "random", "ndcg", 3, data=tiny_data, split=tiny_split,
                           verbose=0)
    assert result.trials_run == ["1", "2"]
    assert sorted(result.tuner.oracle.trials) == ["0", "1", "2"]


def test_hyperband_budget_sets_the_epochs(tiny_data, tiny_split, tmp_path, fake_training):
    result = search.search(tiny_base(), str(tmp_path / "hb"), "hyperband", "ndcg", 5, data=tiny_data,
                           split=tiny_split, epochs_cap=3, verbose=0)
    budgets = [t.hyperparameters.values["tuner/epochs"] for t in result.tuner.oracle.trials.values()]
    assert sorted(c.train.epochs for c in fake_training) == sorted(budgets)
    assert len(set(budgets)) == 2  # a second round trains longer
    assert "epochs" not in [p.name for p in result.tuner.oracle.get_space().space]  # budget, not searched


def test_a_different_search_in_the_same_folder_is_refused(tiny_data, tiny_split, tmp_path, fake_training):
    out = str(tmp_path / "s")
    search.search(tiny_base(), out, "random", "ndcg", 1, data=tiny_data, split=tiny_split, verbose=0)
    with pytest.raises(ValueError, match="different search.*objective"):
        search.search(tiny_base(), out, "random", "rmse", 2, data=tiny_data, split=tiny_split, verbose=0)
    result = search.search(tiny_base(), out, "random", "rmse", 1, data=tiny_data, split=tiny_split,
                           overwrite=True, verbose=0)
    assert result.trials_run == ["0"]
    assert len(json.load(open(os.path.join(out, "summary.json")))["runs"]) == 1


# --- bad names: clear errors before any training ------------------------------------------------

@pytest.fixture
def no_data(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("data was loaded before the arguments were checked")
    monkeypatch.setattr(search, "load_dataset", fail)


@pytest.mark.parametrize("argv, expected", [
    (["--only", "learning_rate,lerning_rate"], "lerning_rate"),
    (["--fix", "tower_size=3"], "tower_size"),
    (["--fix", "fusion_mode=sum"], "'gate', 'concat'"),
    (["--fix", "batch_size=-5"], "positive integer"),
    (["--fix", "learning_rate=0.01", "--only", "learning_rate"], "both fixed"),
])
def test_bad_hyperparameters_are_named_with_the_valid_ones(argv, expected, tmp_path, capsys, no_data):
    assert search.main(["--out", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err
    assert expected in err
    if "name" in err:
        assert ", ".join(NAMES) in err


@pytest.mark.parametrize("flag, value", [("--tuner", "grid"), ("--objective", "auc")])
def test_unknown_tuner_or_objective_lists_the_choices(flag, value, tmp_path, capsys, no_data):
    with pytest.raises(SystemExit) as exit_info:
        search.main(["--out", str(tmp_path), flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert value in err and ("'random'" in err or "'rmse'" in err)


def test_api_rejects_unknown_tuner_and_objective(tmp_path, no_data):
    with pytest.raises(ValueError, match="valid: random, bayesian, hyperband"):
        search.search(tiny_base(), str(tmp_path), tuner="grid")
    with pytest.raises(ValueError, match="valid: ndcg, rmse, combined"):
        search.search(tiny_base(), str(tmp_path), objective="auc")


# --- the space and the trial split --------------------------------------------------------------

def test_space_maps_hyperparameters_onto_the_base_config():
    space = SearchSpace(tiny_base(), epochs_cap=10)
    hp = space.hyperparameters()
    assert hp.values["tower_units"] == "16,8" and hp.values["learning_rate"] == 0.01
    assert "16,8" in {p.name: p for p in hp.space}["tower_units"].values  # the base value joins the choices
    config = space.config({"tower_units": "128,64", "channels": "category", "mimic_weight": 0.2,
                           "history_length": 20, "tuner/epochs": 3})
    assert config.tower.tower_units == (128, 64) and config.afetler.channels == "category"
    assert config.afetler.mimic_weight == 0.2 and config.data.history_length == 20
    assert config.train.batch_size == 64  # untouched fields keep the base value
    with pytest.raises(ValueError, match="valid: embedding_dim"):
        space.config({"dropout": 0.1})


def test_space_fixes_restricts_and_checks_the_base():
    space = SearchSpace(Config(), only=["learning_rate"], fixed=parse_fixed(["tower_units=[128,64]"]),
                        epochs_cap=5)
    assert space.names == ["learning_rate"]
    assert space.base.tower.tower_units == (128, 64) and space.base.train.epochs == 5
    with pytest.raises(ValueError, match="model is 'mf'"):
        SearchSpace(Config(model="mf"))
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_fixed(["learning_rate"])


def test_trial_split_scores_on_validation_and_never_uses_test(tiny_data, tiny_split):
    trial_split = objective.tuning_split(tiny_data, poisoned(tiny_split))
    assert trial_split.test.equals(tiny_split.validation)
    inner = pd.concat([trial_split.train, trial_split.validation])
    assert len(inner) == len(tiny_split.train)
    assert len(trial_split.validation) == round(0.1 * len(tiny_split.train))
    keys = lambda f: set(zip(f.user_id, f.item_id, f.timestamp))  # noqa: E731
    assert keys(inner) == keys(tiny_split.train) and not keys(trial_split.validation) & keys(trial_split.train)


def test_objectives_and_their_directions():
    assert objective.objective("ndcg").direction == "max"
    assert objective.objective("rmse").direction == "min"
    assert objective.combined(0.4, 0.9, 0.5) == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="valid: ndcg, rmse, combined"):
        objective.objective("auc")


def test_search_json_records_the_search(tiny_data, tiny_split, tmp_path, fake_training):
    out = str(tmp_path / "s")
    search.search(tiny_base(), out, "random", "ndcg", 2, data=tiny_data, split=tiny_split, verbose=0)
    settings = json.load(open(os.path.join(out, "search.json")))
    assert settings["tuner"] == "random" and settings["space"]["tuned"] == list(NAMES)
    best = Config.from_json(os.path.join(out, "best_config.json"))
    assert best.train.learning_rate in [c.train.learning_rate for c in fake_training]


def test_compare_writes_default_vs_tuned(tiny_data, tmp_path, fake_training, monkeypatch):
    from types import SimpleNamespace

    from experiments import tuning_compare as compare

    def fake_run(config, verbose=0, data=None, relevant="all"):
        lr = config.train.learning_rate
        metrics = {"T": {"ndcg@10": lr * 10, "precision@10": 0.1}, "R": {"rmse": 1.0 - lr, "mae": 0.8}}
        return SimpleNamespace(metrics=metrics, fit_seconds=1.0, history={"loss": [1.0, 0.5]})

    monkeypatch.setattr(compare, "run", fake_run)
    folder, out = str(tmp_path / "logs"), str(tmp_path / "s")
    write_folder(tiny_data, folder)
    base = tiny_base().replace(data={"source": folder})
    search.search(base, out, "random", "combined", 3, data=tiny_data, verbose=0)
    payload = compare.compare(out, str(tmp_path / "bench"), verbose=0)
    assert set(payload["results"]) == {"default", "tuned"}
    assert payload["results"]["default"]["config"] == base.to_dict()
    assert payload["search"]["trials"] == 3 and payload["machine"]["cpus"] >= 1
    text = open(tmp_path / "bench" / "tuning.md").read()
    assert "| test T NDCG@10 |" in text and "validation objective `val_combined`" in text
    assert "**Outcome.**" in text and "| trial | status | val_combined" in text


def test_variants_table_averages_each_configuration_over_its_seeds(tmp_path):
    from experiments import variants
    runs = [{"label": "a", "seed": 2, "best_val_ndcg@10": 0.3, "best_val_rating_mse": 0.8,
             "fitted_val_ndcg@10": 0.4},
            {"label": "b", "seed": 1, "best_val_ndcg@10": 0.5, "best_val_rating_mse": None},
            {"label": "a", "seed": 1, "best_val_ndcg@10": 0.1, "best_val_rating_mse": 1.0,
             "fitted_val_ndcg@10": 0.2},
            {"label": "ease", "seed": 1, "best_val_ndcg@10": None, "best_val_rating_mse": None,
             "fitted_val_ndcg@10": 0.25}]
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert variants.main(["--render", "--out", str(path)]) == 0
    table = (tmp_path / "v.md").read_text()
    assert "| a | 1, 2 | 0.2000 | 0.1000 / 0.3000 | 0.9000 | 0.3000 | – | – | – / – |" in table
    assert "| b | 1 | 0.5000 | 0.5000 | – | – | – | – | – / – |" in table  # runs from before the fitted column
    assert "| ease | 1 | – | – | – | 0.2500 | – | – | – / – |" in table  # no early stopping: the fitted figure only
    assert table.index("| a |") < table.index("| b |")  # first-seen order
    assert "| data set |" not in table  # no run on another data set: no second table


def test_variants_table_puts_other_data_sets_in_their_own_table_in_suite_order(tmp_path):
    from experiments import variants
    def run(label, seed, dataset, ndcg, rmse, joint, ranking):
        return {"label": label, "seed": seed, "dataset": dataset, "best_val_ndcg@10": ndcg,
                "best_val_rating_mse": rmse ** 2, "fitted_val_ndcg@10": ndcg, "fitted_val_rmse": rmse,
                "served_val_rmse": rmse - 0.1, "stages": {"joint": {"epochs": joint}, "ranking": {"epochs": ranking}}}
    runs = [run("L30", 1, "taste", 0.1, 0.9, 4, 3), run("L30", 2, "taste", 0.3, 0.7, 6, 4),
            run("L30", 1, "ml100k-temporal", 0.2, 1.0, 3, 2), run("L30", 1, "ml100k-random", 0.4, 0.8, 5, 9)]
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert variants.main(["--render", "--out", str(path)]) == 0
    table = (tmp_path / "v.md").read_text()
    first, second = table.split("| data set |")
    assert "| L30 | 1 | 0.4000 | 0.4000 | 0.6400 | 0.4000 | 0.8000 | 0.7000 | 5.0 / 9.0 |" in first  # ML-100k random
    assert "| taste | L30 | 1, 2 | 0.2000 | 0.1000 / 0.3000 | 0.6500 | 0.2000 | 0.8000 | 0.7000 | 5.0 / 3.5 |" in second
    assert second.index("| ml100k-temporal |") < second.index("| taste |")  # the suite's order


def test_variants_served_rmse_is_the_blends_cross_fitted_figure_where_the_blend_is_kept():
    from experiments import variants
    kept = {"taste/val_rmse": 0.93, "blend/blend_used": True, "blend/val_rmse_crossfit": 0.91,
            "blend/val_rmse": 0.90, "blend/val_rmse_without": 0.92}
    assert variants.served_rmse(kept) == 0.91  # not the in-sample 0.90
    # Not kept: the ranker on the same pairs the blend was judged on, not on every rating.
    assert variants.served_rmse(dict(kept, **{"blend/blend_used": False})) == 0.92
    too_few = {"taste/val_rmse": 0.94, "blend/blend_used": False, "blend/blend_interactions": 3}
    assert variants.served_rmse(too_few) == 0.94
    assert variants.served_rmse({"taste/val_rmse": 0.95}) == 0.95  # no blend stage
    assert variants.served_rmse({}) is None


def test_variants_config_takes_a_suite_data_sets_source_and_split():
    from experiments import variants
    config = variants.config_for("afetler", 2, ["data.history_length=30"], dataset="ml100k-temporal")
    assert (config.data.source, config.data.split, config.data.seed) == ("ml100k-temporal", "temporal", 2)
    assert config.data.history_length == 30
    with pytest.raises(SystemExit):
        variants.parse_args(["--label", "x", "--dataset", "nope"])


def test_variants_config_applies_seed_and_overrides():
    from experiments import variants
    config = variants.config_for("two_tower", 7, ["tower.temperature=0.1"])
    assert config.model == "two_tower" and config.data.seed == config.train.seed == 7
    assert config.tower.temperature == 0.1
    assert variants.config_for("afetler", 1, []).retrieval_temperature == 0.1  # afetler.temperature
    with pytest.raises(ValueError, match="unknown field"):
        variants.config_for("afetler", 1, ["tower.temprature=0.1"])


def test_popularity_prior_by_hand():
    """Counts a: 3, b: 1, c, d: 0. The stub's own scores slightly prefer d; the prior
    (log 2 * 0.1 for b) outweighs that. k = 1, training items excluded:
    u2 (validation b) and u3 (validation c) choose among b, c, d."""
    import numpy as np

    from afetler_tf.data.schema import Dataset
    from experiments import variants

    class Stub:
        name = "stub"

        def score_all(self, users, items):
            return np.tile([0.001 if i == "d" else 0.0 for i in items], (len(users), 1))
    items = pd.DataFrame({"item_id": list("abcd"), "title": [""] * 4, "categories": [[]] * 4})
    train = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u1"], "item_id": ["a", "a", "a", "b"],
                          "rating": 4.0, "timestamp": [1, 2, 3, 4]})
    validation = pd.DataFrame({"user_id": ["u2", "u3"], "item_id": ["b", "c"], "rating": 4.0,
                               "timestamp": [5, 6]})
    data = Dataset("hand", pd.concat([train, validation], ignore_index=True),
                   pd.DataFrame({"user_id": ["u1", "u2", "u3"]}), items)
    split = Split("random", 0, train, validation, validation.iloc[:0])
    got = variants.prior_ndcg(Stub(), data, split, [0.0, 1.0], temperature=0.1, k=1)
    assert got == {"0.0": 0.0, "1.0": 0.5}  # beta 1: b first, a hit for u2 only
    scores = variants.PopularityPrior(Stub(), train, 1.0, 0.1).score_all(["u1"], ["a", "c", "x"])
    np.testing.assert_allclose(scores, [[0.1 * np.log(4.0), 0.0, 0.0]])


def test_the_prior_table_averages_each_beta_over_the_seeds():
    from experiments import variants
    runs = [{"label": "a", "seed": 1, "prior_val_ndcg@10": {"0.0": 0.1, "0.2": 0.3}},
            {"label": "a", "seed": 2, "prior_val_ndcg@10": {"0.0": 0.2, "0.2": 0.5}},
            {"label": "b", "seed": 1}]
    lines = variants.prior_table(runs)
    assert "| configuration | seeds | beta 0.0 | beta 0.2 |" in lines
    assert "| a | 1, 2 | 0.1500 | 0.4000 |" in lines and not any(l.startswith("| b |") for l in lines)
    assert variants.prior_table([{"label": "b", "seed": 1}]) == []


def test_variants_report_the_rating_mse_not_the_weighted_loss():
    from experiments import variants
    assert variants.rating_mse({"ranking/best_val_rating_loss": 0.4}, 0.5) == pytest.approx(0.8)
    assert variants.rating_mse({}, 1.0) is None and variants.rating_mse({"ranking/best_val_rating_loss": 0.4}, 0) is None


def test_a_trial_trains_what_its_objective_judges_and_the_best_config_keeps_all(monkeypatch, tiny_data,
                                                                                tiny_split):
    """No NewItemGAN in any trial; an ndcg trial also skips the ranker's later stages and
    protocol R; the configuration the search reports keeps everything."""
    built, fits, scored = [], [], []

    class Fake:
        def fit(self, data, split, verbose=0, skip_stages=()):
            fits.append(tuple(skip_stages))
            return {"loss": [1.0]}

    def fake_build(config):
        built.append(config)
        return Fake()

    def fake_evaluate(model, data, split, protocols, **kwargs):
        scored.append(protocols)
        metrics = {"T": {"ndcg@10": 0.3, "recall@10": 0.2, "precision@10": 0.1}}
        return dict(metrics, R={"rmse": 0.9}) if "R" in protocols else metrics

    monkeypatch.setattr(objective, "build_model", fake_build)
    monkeypatch.setattr(objective, "evaluate", fake_evaluate)
    trial_split = objective.tuning_split(tiny_data, tiny_split)
    ndcg = objective.run_config(Config(), tiny_data, trial_split, objective_name="ndcg")
    combined = objective.run_config(Config(), tiny_data, trial_split, objective_name="combined")
    assert fits == [("ranking", "taste", "rating_blend"), ()] and scored == [("T",), ("R", "T")]
    assert "val_rmse" not in ndcg and combined["val_combined"] == pytest.approx(0.3 - 0.9)
    assert all(c.gan.enabled is False for c in built) and Config().gan.enabled is True
    assert built[0].replace(gan={"enabled": True}) == Config()  # nothing else changed
    space = SearchSpace(Config(), only=["learning_rate"])
    assert space.config({"learning_rate": 0.01}).gan.enabled is True
    with pytest.raises(ValueError, match="Unknown objective"):
        objective.run_config(Config(), tiny_data, trial_split, objective_name="auc")


def test_stages_named_to_skip_do_not_run_and_unknown_names_are_refused():
    from afetler_tf.training.stages import FitContext, Stage, run_stages
    ran = []
    stages = [Stage(name, lambda c, n=name: ran.append(n) or {"x": 1}) for name in ("a", "b", "c")]
    context = FitContext(None, None, None, {}, {}, skip=frozenset({"b"}))
    history = run_stages(stages, context)
    assert ran == ["a", "c"] and history["x"] == 1
    assert sorted(history["stage_seconds"]) == ["a", "c"]  # each stage run is timed
    assert all(s >= 0 for s in history["stage_seconds"].values())
    with pytest.raises(ValueError, match=r"No stage named \['z'\]"):
        run_stages(stages, FitContext(None, None, None, {}, {}, skip=frozenset({"z"})))
