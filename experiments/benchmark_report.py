"""Tables, charts and target lines of the benchmark suites (main, seeds, ablation, cold).

Only formatting lives here: every figure comes from ``benchmarks/<suite>.json``,
written by ``python -m experiments.benchmark``; :mod:`experiments.render`
assembles them into BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

R_COLUMNS = ["mse", "mae", "rmse", "accuracy@10", "precision@10", "roc_auc@10"]
T_COLUMNS = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage@10",
             "popularity_percentile", "diversity@10"]
LOWER_IS_BETTER = {"mse", "mae", "rmse", "popularity_percentile"}
ABLATION_COLUMNS = [("R", "rmse"), ("R", "mae"), ("R", "precision@10"), ("T", "ndcg@10"),
                    ("T", "precision@10"), ("T", "recall@10")]

PROTOCOLS = """\
Protocols (docs/design.md §4). **R**: per user, rank the user's test items
by the model's score, top min(10, |T_u|); relevant = rating >= 4; MSE/MAE/RMSE
over all test ratings (clipped to [1, 5]; models without a rating output map
score -> rating with a linear fit on the validation set); Accuracy@10 uses a
logistic calibration fitted on the validation set. **T**: per user, rank every
catalogue item not in the user's training part (train + validation);
relevant = all of the user's test items."""

# Suite "cold" (protocol C): label -> model name, in table order.
COLD_MODELS = {"random": "random", "category popularity": "category_popularity",
               "content bias (ratings)": "content_bias",
               "content-only tower": "content_tower", "AFETLER + NewItemGAN": "afetler"}
C_COLUMNS = ["precision@10", "recall@10", "ndcg@10", "hit_rate@10", "coverage@10", "rmse", "mae"]
COLD_TEXT = """\
Split `cold-items` (seeds 1-3, also the split seed): 20% of the items leave
training entirely; all their interactions are the test set. **Protocol C**:
per user, rank only the cold items (none of them seen in training); relevant
= the user's cold test items; RMSE/MAE over the cold interactions (models
without a rating output map score -> rating with a linear fit on the
validation set, which holds warm items only). Baselines: random scores;
category popularity (an item scores the mean training interactions per item
of its categories); content bias (a rating reference: training mean + the
user's damped bias + a ridge regression of the warm items' biases on their
categories and year + the user's taste for those (a per-user ridge fit of
what is left of their ratings), no interaction model; lists rank by that
rating);
content-only tower (the base two-tower model whose item
tower sees categories, title words and year, never the id; no GAN); AFETLER
with the NewItemGAN generator embedding the cold items; its ranker sees a
cold item through its content too (item bias regressed from categories and
year on the warm items' main effects b_v + o_v, the interaction term shrunk
toward the user's mean, plus a share of the user's taste for the item's
content, see the line under the table; target-aware
attention on the item's own categories). The GAN's learning rate and dropout are chosen on
validation data only (`python -m experiments gan_select`: the GAN's loss on
held-out warm items, seed 1; section below), never on these test figures."""


SUITES = ("main", "seeds", "ablation", "cold")


def load_suites(directory: str) -> dict:
    """suite name -> its payload, for the suite files present in ``directory``."""
    from experiments import store
    suites = {name: store.read(f"{name}.json", directory) for name in SUITES}
    return {name: payload for name, payload in suites.items() if payload is not None}


def grouped(runs: list) -> dict:
    """label -> list of runs, labels in first-seen order."""
    groups = {}
    for run in runs:
        groups.setdefault(run["label"], []).append(run)
    return groups


def _cell(values, digits=4) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _best(groups: dict, protocol: str, column: str):
    means = {label: np.mean([r["metrics"][protocol][column] for r in runs])
             for label, runs in groups.items() if column in runs[0]["metrics"].get(protocol, {})}
    if not means:
        return None
    pick = min if column in LOWER_IS_BETTER else max
    return pick(means, key=means.get)


def metric_table(groups: dict, protocol: str, columns: list) -> str:
    head = "| model | " + " | ".join(columns) + " | fit s |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    best = {c: _best(groups, protocol, c) for c in columns}
    for label, runs in groups.items():
        cells = []
        for c in columns:
            text = _cell([r["metrics"].get(protocol, {}).get(c) for r in runs])
            cells.append(f"**{text}**" if best[c] == label else text)
        fit = np.mean([r["fit_seconds"] for r in runs])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fit:.0f} |")
    return "\n".join(lines)


def ablation_table(groups: dict) -> str:
    columns = [f"{p} {c}" for p, c in ABLATION_COLUMNS]
    lines = ["| variant | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    full = groups.get("full")
    for label, runs in sorted(groups.items(), key=lambda group: group[0] != "full"):  # full first
        cells = []
        for protocol, column in ABLATION_COLUMNS:
            values = [r["metrics"][protocol][column] for r in runs]
            text = _cell(values)
            if full is not None and label != "full":
                ref = np.mean([r["metrics"][protocol][column] for r in full])
                text += f" ({np.mean(values) - ref:+.4f})"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line(suite: dict) -> str:
    m = suite["machine"]
    done, planned = len(suite["runs"]), suite.get("planned", len(suite["runs"]))
    partial = f" **Partial: {done} of {planned} runs finished.**" if done < planned else ""
    return (f"Machine: {m['platform']}, {m['cpus']} CPUs, GPU: {'yes' if m['gpu'] else 'no'}; "
            f"Python {m['python']}, TensorFlow {m['tensorflow']}, TFRS {m['tfrs']}, "
            f"pandas {m['pandas']}. Suite wall time: {suite['wall_seconds'] / 60:.1f} min."
            + partial)


def chart(directory: str, groups: dict, name: str) -> str:
    from afetler_tf.evaluation.report import bar_chart
    rows = {label: {"T ndcg@10": np.mean([r["metrics"]["T"]["ndcg@10"] for r in runs]),
                    "T precision@10": np.mean([r["metrics"]["T"]["precision@10"] for r in runs]),
                    "R precision@10": np.mean([r["metrics"]["R"]["precision@10"] for r in runs]),
                    "R accuracy@10": np.mean([r["metrics"]["R"]["accuracy@10"] for r in runs])}
            for label, runs in groups.items()}
    path = os.path.join(directory, f"{name}.png")
    bar_chart(path, rows, list(next(iter(rows.values()))), title=f"MovieLens-100k ({name})")
    return path


def cold_targets(groups: dict) -> str:
    """The issue's targets for NewItemGAN, checked against the suite's means."""
    def mean(label, column):
        runs = groups.get(label, [])
        values = [r["metrics"]["C"][column] for r in runs if column in r["metrics"].get("C", {})]
        return float(np.mean(values)) if values else None
    gan, content = mean("AFETLER + NewItemGAN", "ndcg@10"), mean("content-only tower", "ndcg@10")
    category, rmse = mean("category popularity", "ndcg@10"), mean("AFETLER + NewItemGAN", "rmse")
    reference = mean("content bias (ratings)", "rmse")
    if None in (gan, content, category, rmse):
        return "Targets: not every run of the suite is there yet."
    lift = gan / content - 1.0 if content else float("nan")
    verdict = {True: "met", False: "**not met**"}
    return (f"Targets (means over seeds): NDCG@10 of AFETLER + NewItemGAN {gan:.4f} vs content-only "
            f"tower {content:.4f} ({lift:+.1%}; target >= +5%: {verdict[lift >= 0.05]}); vs "
            f"category popularity {category:.4f} (target above: {verdict[gan > category]}); RMSE on "
            f"cold interactions {rmse:.4f} (target <= 1.00: {verdict[rmse <= 1.0]})."
            + (f" For reference, the content-bias row (content alone, no interaction model) "
               f"reaches RMSE {reference:.4f}." if reference is not None else "")
            + cold_path(groups.get("AFETLER + NewItemGAN", [])))


def cold_path(runs: list) -> str:
    """The ranker's cold path as the GAN stage fitted it (validation data only)."""
    paths = [r["cold_path"] for r in runs if "cold_rmse" in r.get("cold_path", {})]
    if not paths:
        return ""

    def mean(key):
        return float(np.mean([p[key] for p in paths]))
    text = (f"\n\nCold path of the ranker (validation only, means over {len(paths)} seeds): the "
            f"content bias is regressed on the warm items' b_v + o_v (o_v: the item's mean "
            f"interaction term), and the interaction term m of a cold item becomes o_u + gamma * "
            f"(m - o_u) + kappa * t_u . x(v), o_u the user's mean term, t_u the user's taste for "
            f"content (a ridge fit of the user's residual ratings on the items' content "
            f"regressors x), with gamma = {mean('interaction_scale'):.2f}")
    if all("affinity_scale" in p for p in paths):
        text += f" and kappa = {mean('affinity_scale'):.2f}"
    text += (f", fitted on simulated cold items (the GAN's held-out warm items' "
             f"{mean('interaction_scale_interactions'):.0f} validation ratings, under unknown ids); "
             f"their RMSE with gamma = 1: {mean('cold_rmse_unscaled'):.4f}, gamma = 0 (biases and "
             f"the user's offset only): {mean('cold_rmse_bias_only'):.4f}")
    if all("cold_rmse_no_affinity" in p for p in paths):
        text += f", the best gamma without the taste term: {mean('cold_rmse_no_affinity'):.4f}"
    return text + f", the fitted scales: {mean('cold_rmse'):.4f}."


PAPER_COLUMNS = ("mse", "mae", "accuracy@10", "precision@10", "roc_auc@10")


def afetler_targets(groups: dict) -> str:
    """The AFETLER issue's accuracy targets, checked against the seeds suite's means."""
    if not {"afetler", "two_tower"} <= set(groups):
        return "Targets: not every run of the suite is there yet."

    def mean(label, protocol, column):
        return float(np.mean([r["metrics"][protocol][column] for r in groups[label]]))
    verdict = {True: "met", False: "**not met**"}
    best = [c for c in PAPER_COLUMNS if _best(groups, "R", c) == "afetler"]
    rmse, mae = mean("afetler", "R", "rmse"), mean("afetler", "R", "mae")
    ndcg, p10 = mean("afetler", "T", "ndcg@10"), mean("afetler", "T", "precision@10")
    base = mean("two_tower", "T", "ndcg@10")
    lift = ndcg / base - 1.0

    def at_least(value, bound):  # a mean that prints as the bound meets it
        return value >= bound - 1e-9
    ease = (f" EASE alone (one of the two fits of AFETLER's item-item channel): NDCG@10 "
            f"{mean('ease', 'T', 'ndcg@10'):.4f}, P@10 {mean('ease', 'T', 'precision@10'):.4f}."
            if "ease" in groups else "")
    return (f"Targets (AFETLER, means over seeds 1-3): protocol R best of every model on "
            f"{len(best)} of the {len(PAPER_COLUMNS)} paper columns "
            f"({verdict[len(best) == len(PAPER_COLUMNS)]}); RMSE {rmse:.4f} (<= 0.90: "
            f"{verdict[rmse <= 0.90]}), MAE {mae:.4f} (<= 0.71: {verdict[mae <= 0.71]}). Protocol T: "
            f"NDCG@10 {ndcg:.4f} (>= 0.42: {verdict[at_least(ndcg, 0.42)]}), P@10 {p10:.4f} (>= 0.36: "
            f"{verdict[at_least(p10, 0.36)]}), {lift:+.1%} NDCG@10 over the two-tower base "
            f"{base:.4f} (>= +5%: {verdict[at_least(lift, 0.05)]}).{ease}")


def user_taste_line(runs: list) -> str:
    """AFETLER's last fit step (models.taste), as its runs recorded it (validation data only)."""
    tastes = [r["user_taste"] for r in runs if "val_rmse" in r.get("user_taste", {})]
    if not tastes:
        return ""

    def mean(key):
        return float(np.mean([t[key] for t in tastes]))
    return (f"User taste (AFETLER's last fit step, validation only, means over {len(tastes)} "
            f"seeds): a trained item's rating gains kappa_w * t_u . x(v), t_u the user's ridge fit "
            f"of the ranker's training residuals on the items' content x (categories, year), "
            f"kappa_w = {mean('taste_scale'):.2f} fitted on the "
            f"{mean('taste_interactions'):.0f} validation ratings; validation rating RMSE "
            f"{mean('val_rmse_without'):.4f} without it, {mean('val_rmse'):.4f} with it.")


def rating_blend_line(runs: list) -> str:
    """AFETLER's rating blend (models.rating_blend), as its runs recorded it (validation data only)."""
    blends = [r["rating_blend"] for r in runs if "val_rmse_crossfit" in r.get("rating_blend", {})]
    if not blends:
        return ""

    def mean(key):
        return float(np.mean([b[key] for b in blends]))
    used = sum(bool(b["blend_used"]) for b in blends)
    return (f"Rating blend (AFETLER's last fit step, validation only, means over {len(blends)} seeds): "
            f"a biased MF trained on the ratings ({mean('factor_epochs'):.0f} epochs), blended as "
            f"{mean('blend_intercept'):.2f} + {mean('blend_ranker'):.2f} * ranker + "
            f"{mean('blend_factor'):.2f} * MF, weights fitted on the {mean('blend_interactions'):.0f} "
            f"validation ratings of pairs the MF knows; used on {used} of {len(blends)} seeds "
            f"(cross-fitted validation RMSE {mean('val_rmse_crossfit'):.4f} against the ranker's "
            f"{mean('val_rmse_without'):.4f}).")


def stale_defaults(runs: list, label: str = "full") -> str:
    """A line naming the ``afetler`` settings in which the ``label`` runs' configuration
    differs from today's defaults, or "" if none. A setting added since reads, where a
    run lacks it, as the value that did what the run did
    (``experiments.datasets_report.ADDED_FIELDS``), else as absent."""
    from afetler_tf.config import AfetlerConfig
    from experiments.datasets_report import ADDED_FIELDS
    added = {k.split(".", 1)[1]: v for k, v in ADDED_FIELDS.items() if k.startswith("afetler.")}
    now = dataclasses.asdict(AfetlerConfig())
    then = [{**added, **r.get("config", {}).get("afetler", {})} for r in runs if r.get("label") == label]
    if not then:
        return ""
    changed = [f"afetler.{k} ({json.dumps(then[0][k]) if k in then[0] else 'absent'} then, "
               f"{json.dumps(now[k])} now)" for k in now if any(c.get(k, None) != now[k] for c in then)]
    if not changed:
        return ""
    return (f"These runs predate today's defaults: {', '.join(changed)}. Every row was measured "
            f"without what changed; re-run the suite to measure the current model.")


def item_item_line(runs: list) -> str:
    """AFETLER's item-item channel (models.item_item) as its runs recorded it (validation only)."""
    fits = [r["item_item"] for r in runs if r.get("item_item", {}).get("val_ndcg@10")]
    if not fits:
        return ""
    shares = [f["share"] for f in fits]
    towers = np.mean([f["val_ndcg@10"]["0.0"] for f in fits])
    both = np.mean([f["val_ndcg@10"][str(f["share"])] for f in fits])
    kinds = [f.get("model", "ease") for f in fits]  # runs before the choice: EASE
    named = {"ease": f"EASE (penalty {fits[0]['penalty']:g})",
             "ials": "iALS ({factors} factors, regularization {regularization:g}, alpha {alpha:g}, "
                     "fold-in ridge {fold_in_ridge:g})".format(**next(
                         (f["ials"] for f in fits if "ials" in f), {"factors": 0, "regularization": 0,
                                                                    "alpha": 0, "fold_in_ridge": 0}))}
    fitted_by = "; ".join(f"{named[k]} on {kinds.count(k)} of {len(kinds)} seeds"
                          for k in ("ease", "ials") if k in kinds)
    return (f"Item-item channel (fitted after the towers, validation only, {len(fits)} seeds): "
            f"a rank-{fits[0]['rank']} item-item score, fitted by {fitted_by}, added to the "
            f"towers' score with the share s picked on validation NDCG@10: s = "
            f"{', '.join(f'{s:g}' for s in shares)}; validation NDCG@10 {towers:.4f} with the "
            f"towers alone, {both:.4f} with the channel.")


def speed_line(groups: dict) -> str:
    """Seconds per epoch of the first (joint) stage, AFETLER vs the base, and
    AFETLER's whole default fit; '' where a run did not record them."""
    def seconds(label, key):
        values = [r.get(key) for r in groups.get(label, [])]
        return None if not values or None in values else float(np.mean(values))
    afetler, base = seconds("afetler", "epoch_seconds"), seconds("two_tower", "epoch_seconds")
    fit = seconds("afetler", "fit_seconds")
    if afetler is None or base is None:
        return ""
    verdict = {True: "met", False: "**not met**"}
    return (f"Speed (this suite's runs, {groups['afetler'][0].get('cpus', 2)} CPUs): an AFETLER "
            f"epoch (joint stage) {afetler:.1f} s vs {base:.1f} s for the two-tower base "
            f"({afetler / base:.1f}x; target <= 4x: {verdict[afetler <= 4 * base]}); AFETLER's "
            f"whole default fit (every stage) {fit:.0f} s (target < 300 s: {verdict[fit < 300]}).")
