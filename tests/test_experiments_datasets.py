"""The ``datasets`` suite: each synthetic log's planted mechanism, the --quick
suite end to end (JSON, resuming), and the renderer's ratios on hand-made results."""

import json
import os

import numpy as np
import pytest
from scipy.stats import spearmanr

from experiments import datasets, datasets_report, synthetic_logs
from experiments.synthetic_logs import Size

QUICK = synthetic_logs.size_of("taste", quick=True)  # 300 users, 400 items, 5,000 interactions


def _indices(data):
    """(user, item) positions of each interaction (ids are u<n> and i<n>)."""
    inter = data.interactions
    return (inter["user_id"].str[1:].astype(int).to_numpy(),
            inter["item_id"].str[1:].astype(int).to_numpy())


def test_generators_are_deterministic_and_canonical():
    a, b = synthetic_logs.taste(3, QUICK), synthetic_logs.taste(3, QUICK)
    assert a.interactions.equals(b.interactions)
    assert not a.interactions.equals(synthetic_logs.taste(4, QUICK).interactions)
    assert len(a.interactions) == QUICK.interactions and len(a.users) == QUICK.users
    assert a.interactions.duplicated(["user_id", "item_id"]).sum() == 0
    assert a.interactions.groupby("user_id").size().min() >= synthetic_logs.MIN_PER_USER
    assert list(a.items.columns[:5]) == ["item_id", "title", "year", "categories", "category"]
    assert a.report[0].startswith("synthetic taste:")


def test_taste_picks_and_ratings_follow_taste():
    data, truth = synthetic_logs.taste(0, QUICK, with_truth=True)
    user, item = _indices(data)
    taste = truth["taste"][user, item]  # standardised over the catalogue: mean 0, std 1
    assert taste.mean() > 1.0  # picked items are far above an average item
    assert np.corrcoef(data.interactions["rating"], taste)[0, 1] > 0.7
    assert 3.2 < data.interactions["rating"].mean() < 3.8


def test_popularity_picks_follow_popularity_ratings_follow_taste():
    data, truth = synthetic_logs.popularity(0, QUICK, with_truth=True)
    user, item = _indices(data)
    picks = np.bincount(item, minlength=QUICK.items)
    assert spearmanr(picks, truth["rank"])[0] < -0.75  # rank 0 = most popular
    tail = truth["rank"] >= 50  # promoted items outside the head are picked far more often
    assert picks[truth["promoted"] & tail].mean() > 3 * picks[~truth["promoted"] & tail].mean()
    taste = truth["taste"][user, item]
    assert abs(taste.mean()) < 0.1  # what users pick says nothing about their taste ...
    assert np.corrcoef(data.interactions["rating"], taste)[0, 1] > 0.7  # ... their ratings do


def test_implicit_has_no_ratings_and_the_taste_picks():
    data = synthetic_logs.implicit(0, QUICK)
    assert data.interactions["rating"].isna().all() and not data.has_ratings
    assert data.rating_range is None
    taste = synthetic_logs.taste(0, QUICK)
    pairs = ["user_id", "item_id"]
    assert data.interactions[pairs].equals(taste.interactions[pairs])
    assert datasets.skip_reason("mf", data) and datasets.skip_reason("deepfm", data)
    assert datasets.skip_reason("ease", data) is None


def test_longtail_has_20000_items_with_zipf_popularity():
    size = synthetic_logs.size_of("longtail", quick=True)
    data, truth = synthetic_logs.longtail(0, size, with_truth=True)
    assert len(data.items) == 20_000 == synthetic_logs.size_of("longtail").items
    _, item = _indices(data)
    picks = np.bincount(item, minlength=20_000)
    assert picks[truth["rank"] < 200].sum() > 0.4 * picks.sum()  # 1% of the items: ~half the picks
    assert (picks == 0).mean() > 0.7  # most of the catalogue is never picked


def test_attributes_drive_the_preference():
    data, truth = synthetic_logs.attributes(0, Size(600, 400, 10_000), with_truth=True)
    user, item = _indices(data)
    ages = data.users.set_index("user_id")["age"]
    group = synthetic_logs.age_group(ages.loc[data.interactions["user_id"]].to_numpy())
    assert (group == truth["group"][user]).all()
    # age group x price: the young pick cheap items, the seniors expensive ones
    price = np.log(data.items["price"].to_numpy()[item])
    assert price[group == 0].mean() + 1.0 < price[group == 2].mean()
    # age group x category: each group's category shares follow the planted table
    counts = np.zeros((3, synthetic_logs.CATEGORIES))
    np.add.at(counts, (group, item % synthetic_logs.CATEGORIES), 1)
    share = counts / counts.sum(1, keepdims=True)
    table = truth["age_table"]
    centred = lambda m: (m - m.mean(1, keepdims=True)).ravel()  # noqa: E731
    assert np.corrcoef(centred(share), centred(table))[0, 1] > 0.6
    # the region is the zip code's first two characters
    region = data.users["zip"].str[:2].astype(int).to_numpy()
    assert (region == truth["region"]).all() and "price" in data.items


def _quick(tmp_path, *argv):
    return datasets.main(["--quick", "--out", str(tmp_path), *argv])


def test_quick_suite_writes_json_and_resumes(tmp_path):
    assert _quick(tmp_path, "--datasets", "taste", "--models", "popularity", "ease") == 0
    with open(tmp_path / "datasets.json") as f:
        payload = json.load(f)
    runs = payload["runs"]["taste"]
    assert set(runs) == {"popularity", "ease"} and set(runs["ease"]) == {"1"}
    assert payload["quick"] is True and payload["machine"]["cpus"] == os.cpu_count()
    # planted taste: the item-item model beats popularity on protocol T
    ndcg = {m: runs[m]["1"]["metrics"]["T"]["ndcg@10"] for m in runs}
    assert ndcg["ease"] > ndcg["popularity"]
    assert "rmse" in runs["ease"]["1"]["metrics"]["R"]
    assert payload["datasets"]["taste"]["interactions"] == QUICK.interactions
    # resuming: nothing new runs, the records stay as they were
    again = datasets.run_suite(["taste"], ["popularity", "ease"], [1], str(tmp_path), quick=True)
    assert again["ran"] == 0 and again["runs"]["taste"] == runs
    # rating models on implicit data: skipped with the reason recorded (no training)
    assert _quick(tmp_path, "--datasets", "implicit", "--models", "mf") == 0
    with open(tmp_path / "datasets.json") as f:
        skipped = json.load(f)["runs"]["implicit"]["mf"]["1"]
    assert "implicit-only" in skipped["skipped"]
    text = (tmp_path / "datasets.md").read_text()
    assert "### taste" in text and "| mf | skipped:" in text and "--quick" in text
    with pytest.raises(ValueError, match="another --out"):  # a full run never mixes with --quick
        datasets.run_suite(["taste"], ["popularity"], [1], str(tmp_path), quick=False)


def test_quick_ials(tmp_path):
    pytest.importorskip("implicit")
    assert _quick(tmp_path, "--datasets", "taste", "--models", "ials") == 0
    with open(tmp_path / "datasets.json") as f:
        record = json.load(f)["runs"]["taste"]["ials"]["1"]
    assert record["params"]["factors"] == 16 and record["trials"] == 2
    assert record["metrics"]["T"]["ndcg@10"] > 0.05  # popularity: ~0.04 on this log


def _run(rmse=None, ndcg=0.1):
    metrics = {"T": {"ndcg@10": ndcg, "precision@10": ndcg / 2, "recall@10": ndcg * 2}}
    if rmse is not None:
        metrics["R"] = {"rmse": rmse, "mae": rmse * 0.8}
    return {"metrics": metrics, "fit_seconds": 1.0}


def test_summary_ratio_by_hand():
    runs = {"ml100k-random": {
        "afetler": {"1": _run(0.90, 0.44), "2": _run(0.90, 0.44)},
        "mf": {"1": _run(0.95, 0.10)},
        "deepfm": {"1": _run(0.91, 0.10), "2": _run(0.93, 0.10)},  # mean 0.92: best rating rival
        "two_tower": {"1": _run(1.00, 0.39)},
        "ease": {"1": _run(1.10, 0.40)},
        "ials": {"1": _run(1.10, 0.41), "2": _run(1.10, 0.43)},  # mean 0.42: best top-N rival
        "popularity": {"1": _run(1.10, 0.20)}},
        "implicit": {"afetler": {"1": _run(None, 0.3)}, "ease": {"1": _run(None, 0.25)},
                     "mf": {"1": {"model": "mf", "skipped": "no ratings"}}}}
    value, rival = datasets_report.ratio(runs["ml100k-random"], "R", "rmse",
                                         datasets_report.RATING_RIVALS)
    assert rival == "deepfm" and value == pytest.approx(0.90 / 0.92)
    value, rival = datasets_report.ratio(runs["ml100k-random"], "T", "ndcg@10",
                                         datasets_report.TOPN_RIVALS)
    assert rival == "ials" and value == pytest.approx(0.44 / 0.42)
    assert datasets_report.ratio(runs["implicit"], "R", "rmse", datasets_report.RATING_RIVALS) == \
        (None, None)
    text = datasets_report.markdown({"runs": runs, "datasets": {}, "data_seed": 0,
                                     "quick": False, "machine": {"platform": "test", "cpus": 2},
                                     "wall_seconds": 60})
    assert "| ml100k-random | 0.978 (deepfm) |" in text and "1.048 (ials)" in text
    assert "| implicit | – | – | 1.200 (ease) |" in text
    assert "0.4200 ± 0.0100" in text and "| mf | skipped: no ratings |" in text


def test_registered_and_rendered_into_benchmarks_md(tmp_path):
    from experiments import render
    from experiments.registry import SUITES
    assert SUITES["datasets"].module == "datasets"
    assert render.section_files(str(tmp_path)) == []
    (tmp_path / "datasets.md").write_text("## Data sets: test\n")
    (tmp_path / "zz.md").write_text("## Other\n")
    assert render.section_files(str(tmp_path))[0].endswith("datasets.md")
    text = render.render(str(tmp_path))
    assert text.index("## Data sets: test") < text.index("## Other")


def test_ablation_models_are_afetler_with_one_switch_off(monkeypatch, capsys):
    config = datasets.model_config("afetler[no MCAU]", "taste", 2)
    assert config.model == "afetler" and config.afetler.mcau is False
    assert config.afetler.fusion is True and config.train.seed == 2
    assert datasets.model_config("afetler", "taste", 2).afetler.mcau is True
    with pytest.raises(ValueError, match="unknown ablation"):
        datasets.ablation_model("no such part")
    seen = {}
    monkeypatch.setattr(datasets, "run_suite",
                        lambda names, models, *a, **k: seen.setdefault("m", models) and
                        {"ran": 0})
    datasets.main(["--datasets", "taste", "--models", "afetler", "--ablation"])
    from afetler_tf.presets import ABLATIONS
    assert seen["m"][0] == "afetler" and "afetler[no fusion]" in seen["m"]
    assert "afetler[full]" not in seen["m"] and "afetler[no ranking head]" not in seen["m"]
    assert len(seen["m"]) == 1 + len(ABLATIONS) - 2
    assert datasets.main(["--datasets", "taste", "--ablation", "no such part"]) == 2
    assert capsys.readouterr().err.count("unknown ablation 'no such part'") == 1


def test_ablation_table_by_hand():
    runs = {"taste": {"afetler": {"1": _run(0.90, 0.40), "2": _run(0.92, 0.42), "3": _run(0.9, 0.5)},
                      "afetler[no MCAU]": {"1": _run(0.90, 0.37), "2": _run(0.93, 0.42)},
                      "ease": {"1": _run(None, 0.30)}},
            "implicit": {"afetler": {"1": _run(None, 0.3)},
                         "afetler[no MCAU]": {"1": _run(None, 0.31)}}}
    # seeds both have (1, 2): full NDCG 0.41, variant 0.395: -0.015; the full model's spread
    # over its three seeds (0.40, 0.42, 0.50): std 0.0432, so within it
    change, std, k = datasets_report.ablation_change(runs["taste"], "afetler[no MCAU]", "T",
                                                     "ndcg@10")
    assert (change, std, k) == (pytest.approx(-0.015), pytest.approx(np.std([.4, .42, .5])), 2)
    change, std, k = datasets_report.ablation_change(runs["taste"], "afetler[no MCAU]", "R", "rmse")
    assert change == pytest.approx(0.005) and std == pytest.approx(np.std([.9, .92, .9]))
    assert datasets_report.ablation_change(runs["implicit"], "afetler[no MCAU]", "R", "rmse") == \
        (None, None, 0)
    text = datasets_report.markdown({"runs": runs, "datasets": {}, "data_seed": 0,
                                     "quick": False, "machine": {"platform": "test", "cpus": 2},
                                     "wall_seconds": 60})
    assert "| no MCAU | -0.0150 (2) | +0.0100 (1) |" in text  # NDCG: within the spread
    assert "| no MCAU | +0.0050 (2) | – |" in text  # RMSE: within one std (0.0094)
    runs["taste"]["afetler"].pop("3")  # spread now 0.01: removing MCAU hurt beyond it
    text = datasets_report.markdown({"runs": runs, "datasets": {}, "data_seed": 0,
                                     "quick": False, "machine": {"platform": "test", "cpus": 2},
                                     "wall_seconds": 60})
    assert "| no MCAU | -0.0150* (2) | +0.0100 (1) |" in text
    tables = text.split("### AFETLER without each component")
    assert "afetler[" not in tables[0]  # the data sets' tables list the full model only


def test_stage_epochs_of_a_history():
    history = {"loss": [3, 2, 2.5], "best_epoch": 2, "ranking/loss": [1, 0.9], "ranking/best_epoch": 2,
               "gan/d_loss": [1, 1, 1, 1], "gan/best_epoch": 1, "item_item": {"share": 0.2}}
    assert datasets.stage_epochs(history) == {"joint": {"epochs": 3, "best_epoch": 2},
                                              "ranking": {"epochs": 2, "best_epoch": 2},
                                              "gan": {"epochs": 4, "best_epoch": 1}}
    assert datasets.stage_epochs({"loss": [1.0]}) == {"joint": {"epochs": 1, "best_epoch": None}}


def test_stage_epochs_keep_each_stopping_curve():
    history = {"loss": [3, 2, 2.5], "val_ndcg@10": [0.1, 0.3, 0.2], "best_epoch": 2,
               "best_val_ndcg@10": 0.3, "ranking/loss": [1, 0.9], "ranking/val_rating_loss": [0.8, 0.7],
               "ranking/best_epoch": 2, "ranking/best_val_rating_loss": 0.7,
               "gan/d_loss": [1, 1], "gan/val_retrieval_loss": [7, 8], "gan/best_epoch": 1,
               "gan/best_val_retrieval_loss": 7}
    stages = datasets.stage_epochs(history)
    assert stages["joint"] == {"epochs": 3, "best_epoch": 2, "monitor": "val_ndcg@10",
                               "curve": [0.1, 0.3, 0.2]}
    assert stages["ranking"]["monitor"] == "val_rating_loss"
    assert stages["ranking"]["curve"] == [0.8, 0.7]
    assert stages["gan"] == {"epochs": 2, "best_epoch": 1, "monitor": "val_retrieval_loss",
                             "curve": [7.0, 8.0]}


def test_report_names_rows_run_with_an_earlier_default():
    def record(model, dataset, seed, **change):
        config = json.loads(datasets.model_config(model, dataset, seed).to_json())
        for field, value in change.items():
            section, key = field.split("__")
            config[section][key] = value
        return {"config": config, "metrics": {}}
    payload = {"runs": {
        "taste": {"afetler": {"1": record("afetler", "taste", 1, data__history_length=50)},
                  "mf": {"1": record("mf", "taste", 1)},
                  "ials": {"1": {"config": {"seed": 1}}}},  # iALS: no afetler_tf config, not checked
        "implicit": {"afetler": {"1": record("afetler", "implicit", 1, data__history_length=50)},
                     "afetler[no fusion]": {"2": record("afetler[no fusion]", "implicit", 2,
                                                       data__history_length=50)}}}}
    assert datasets_report.changed_defaults(payload) == [
        ("data.history_length", "50", str(datasets.model_config("afetler", "taste", 1).data.history_length),
         ["afetler", "afetler[no fusion]"], ["taste", "implicit"])]
    line = datasets_report._changed_line(payload)
    assert "`data.history_length` 50" in line and "afetler, 1 AFETLER ablation(s) (every data set)" in line
    assert "mf" not in line  # the same config as today's: not named
    payload["runs"]["taste"]["mf"]["1"]["config"]["deepfm"]["hidden_units"] = (64, 32)  # in memory
    assert "mf" not in datasets_report._changed_line(payload)  # a tuple is the JSON list it is stored as
    payload["runs"]["taste"]["mf"]["1"]["config"]["afetler"].pop("popularity_prior")  # a section MF
    assert "mf" not in datasets_report._changed_line(payload)  # does not read: not compared
    payload["runs"]["taste"]["mf"]["1"]["config"]["mf"]["l2"] = 1.0  # one it reads
    assert "`mf.l2` 1.0" in datasets_report._changed_line(payload)
    payload["runs"]["taste"]["mf"]["1"]["config"]["mf"]["l2"] = datasets.model_config("mf", "taste", 1).mf.l2
    del payload["runs"]["implicit"]
    payload["runs"]["taste"]["afetler"]["1"] = record("afetler", "taste", 1)
    assert datasets_report.changed_defaults(payload) == [] and datasets_report._changed_line(payload) == ""
    # A field added since reads, where a record lacks it, as what the run did ...
    payload["runs"]["taste"]["afetler"]["1"]["config"]["afetler"].pop("target_attention_stage")
    assert datasets_report.changed_defaults(payload) == []
    # ... which a changed default would name.
    payload["runs"]["taste"]["afetler"]["1"]["config"]["afetler"]["target_attention_stage"] = "ranking"
    assert "`afetler.target_attention_stage` \"ranking\"" in datasets_report._changed_line(payload)
    payload["runs"]["taste"]["afetler"]["1"]["config"]["afetler"]["target_attention_stage"] = "joint"
    # A run before the iALS fit of the item-item channel: no ials section; it reads as the
    # first iALS settings, whose steps were solved exactly (before ials.cg_steps).
    payload["runs"]["taste"]["afetler"]["1"]["config"].pop("ials")
    assert datasets_report.changed_defaults(payload) == [("ials.cg_steps", "null", "3", ["afetler"], ["taste"])]
    assert "`ials.cg_steps` null (today 3)" in datasets_report._changed_line(payload)
    payload["runs"]["taste"]["afetler"]["1"]["config"]["afetler"].pop("item_item_model")
    assert ("`afetler.item_item_model` \"ease\" (today \"auto\")"
            in datasets_report._changed_line(payload))


def test_the_header_splits_the_runs_time_between_the_models_and_the_ablation():
    payload = {"runs": {"taste": {"mf": {"1": {"wall_seconds": 60.0}, "2": {"wall_seconds": 30.0}},
                                  "afetler[no fusion]": {"1": {"wall_seconds": 120.0}},
                                  "ease": {"1": {"error": "x", "wall_seconds": 999.0}}}}}
    assert datasets_report._run_minutes(payload) == "; the runs themselves: the models' 1.5 min and the ablation's 2.0 min"
    assert datasets_report._run_minutes({"runs": {}}) == ""


def test_a_setting_the_two_tower_forces_is_not_a_changed_default():
    """The two-tower is AFETLER under the base preset: a run recorded before
    afetler.rating_blend existed ran without a blend, as today's two-tower does
    (the preset forces it off); AFETLER's own run of that time is named."""
    def record(model):
        config = json.loads(datasets.model_config(model, "taste", 1).to_json())
        config["afetler"].pop("rating_blend")
        return {"config": config, "metrics": {}}
    payload = {"runs": {"taste": {"two_tower": {"1": record("two_tower")}}}}
    assert datasets_report.changed_defaults(payload) == []
    payload["runs"]["taste"]["afetler"] = {"1": record("afetler")}
    assert datasets_report.changed_defaults(payload) == [("afetler.rating_blend", "false", "true",
                                                          ["afetler"], ["taste"])]
