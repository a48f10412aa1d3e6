"""``python -m experiments gan_select``: NewItemGAN's g_learning_rate and dropout, chosen on validation data.

On the cold-items split (seed 1) AFETLER is trained once without its GAN
(stages joint + ranking), then the GAN stage alone (``Afetler.fit_new_item_gan``,
towers frozen) once per grid point, from the same seed. Each point is scored
by the GAN's own early-stopping criterion: its best validation loss
(``val_retrieval_loss``; ``val_similarity_loss`` without a retrieval term)
on the held-out warm items (``gan.validation_items`` of the items with
training interactions, held out whole, scored on their train + validation
pairs: items the generator never saw, the cold-start situation). The
split's validation part holds warm items only (a random 10% of the
non-cold interactions), and its test part (the cold items) is never read,
so nothing here looks at a test metric. Lowest loss wins.

Writes ``<dir>/gan_select.json`` and ``<dir>/gan_select.md`` (a ``## ``
section BENCHMARKS.md appends). The winner becomes ``GanConfig``'s defaults
by hand (config.py); the section says whether they match.

Example::

    python -m experiments gan_select                # ~12 min on 2 busy CPU cores
    python -m experiments render                    # appends the section
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Optional, Sequence

# 2e-4 and 0.5 extend a first 2 x 2 grid ({5e-4, 2e-3} x {0.0, 0.3}), whose
# winner (5e-4, 0.3) sat in its corner.
GRID = {"g_learning_rate": (2e-4, 5e-4, 2e-3), "dropout": (0.0, 0.3, 0.5)}


def select(source: str = "movielens-100k", seed: int = 1, grid: Optional[dict] = None,
           config=None, data=None, verbose: int = 1) -> dict:
    """Trains the model once and the GAN stage per grid point; returns the
    JSON payload (rows sorted as the grid, ``best`` = the winning row)."""
    from afetler_tf import training
    from afetler_tf.models import build_model
    from afetler_tf.runs import training_run as pipeline
    from experiments.benchmark import model_config

    grid = dict(grid or GRID)
    config = config or model_config("afetler", seed, source, split="cold-items")
    config = config.replace(gan={"enabled": False})  # stages joint + ranking only
    data, split = pipeline.prepare(config, verbose=0, data=data)
    model = build_model(config)
    start = time.time()
    model.fit(data, split, verbose=0)
    fit_seconds = time.time() - start
    if verbose:
        print(f"[{time.strftime('%H:%M:%S')}] main model trained ({fit_seconds:.0f}s)", flush=True)
    rows = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        model.config = config.replace(gan=dict(point, enabled=True))
        training.set_seed(config.train.seed)
        t0 = time.time()
        history = model.fit_new_item_gan(split, verbose=0)  # the GAN, then the cold path
        gcfg = model.config.gan
        monitor = "val_retrieval_loss" if gcfg.retrieval_weight else "val_similarity_loss"
        best = history["best_epoch"] - 1
        rows.append(dict(point, criterion=monitor, loss=history[f"best_{monitor}"],
                         val_similarity_loss=history["val_similarity_loss"][best],
                         best_epoch=history["best_epoch"], epochs=len(history[monitor]),
                         seconds=time.time() - t0))
        rows[-1].update(simulated_cold(model, data, split))
        if verbose:
            print(f"    {point}: {monitor} {rows[-1]['loss']:.4f} (epoch {history['best_epoch']}); "
                  f"simulated-cold RMSE {rows[-1]['cold_rmse']:.4f} (no content bias "
                  f"{rows[-1]['cold_rmse_no_content_bias']:.4f}, own ids {rows[-1]['own_id_rmse']:.4f})",
                  flush=True)
    best = min(rows, key=lambda r: r["loss"])
    from experiments.machine import machine
    return {"source": source, "split": "cold-items", "seed": seed, "grid": grid, "rows": rows,
            "best": best, "main_fit_seconds": fit_seconds, "machine": machine(),
            "wall_seconds": time.time() - start}


def simulated_cold(model, data, split) -> dict:
    """Rating RMSE on the split's validation interactions of the GAN's
    held-out warm items (validation data only; informative, not the
    criterion), the items shown under unknown ids so that the ranker takes
    every cold path (generator p_v, content bias, target categories from
    content); the content bias and the users' tastes are refitted without
    the held-out items for this, then restored; the ranker's interaction and
    affinity scales are the ones the GAN stage fitted on these same
    interactions. Keys: ``cold_rmse``,
    ``cold_rmse_no_content_bias`` (the bias left at the OOV row's 0, as
    before issue 4's fix),
    ``own_id_rmse`` (the same interactions, items under their own ids),
    ``cold_interactions``."""
    import numpy as np

    from afetler_tf import training
    from afetler_tf.models import cold_path
    net, encoder, bias = model.network, model.candidate_encoder, model.network.ranking_head.cold_items.content_bias
    held, rows = cold_path.simulated_cold(model, split)
    feats, masked = model.examples(rows, model.sampling_probabilities), cold_path.as_cold(model, rows)
    low, high = data.rating_range or (-np.inf, np.inf)
    truth = rows["rating"].to_numpy(np.float64)

    def rmse(f):
        pred = training.batched(lambda b: net.rate(b, net.query_tower(b), encoder(b))[:, 0], f)
        return float(np.sqrt(np.mean((np.clip(pred, low, high) - truth) ** 2)))
    out = {"own_id_rmse": rmse(feats), "cold_interactions": int(len(rows))}
    with cold_path.without_items(model, split, held):
        out["cold_rmse"] = rmse(masked)
        bias.weight.assign(np.zeros(bias.weight.shape, np.float32))
        bias.intercept.assign(0.0)
        out["cold_rmse_no_content_bias"] = rmse(masked)
    return out


def render(payload: dict) -> str:
    """The ``## `` section of BENCHMARKS.md."""
    from afetler_tf.config import GanConfig
    best, defaults = payload["best"], GanConfig()
    keys = list(payload["grid"])
    matches = all(getattr(defaults, k) == best[k] for k in keys)
    lines = [f"## NewItemGAN settings chosen on validation data (cold-items split, seed {payload['seed']})",
             "", "`python -m experiments gan_select`: AFETLER trained once without its GAN, then the "
             "GAN stage per grid point; criterion: the GAN's best validation "
             f"`{best['criterion']}` on its held-out warm items (never the test part, which holds "
             "the cold items). Lower is better.", "",
             "Information only (not the criterion): rating RMSE on the split's validation "
             "interactions of those held-out items, shown to the model under unknown ids "
             "(simulated cold: generator, content bias refitted without them, categories from "
             "content), without the content bias (b_v = 0 as before), and under their own ids.", "",
             "| " + " | ".join(keys) + f" | {best['criterion']} | val_similarity_loss | best epoch "
             "| epochs | cold RMSE | cold RMSE, b_v = 0 | own-id RMSE | s |",
             "|" + "---|" * (len(keys) + 8)]
    for row in payload["rows"]:
        cells = [f"{row[k]:g}" for k in keys]
        loss = f"{row['loss']:.4f}"
        lines.append("| " + " | ".join(cells) + f" | {'**' + loss + '**' if row == best else loss}"
                     f" | {row['val_similarity_loss']:.4f} | {row['best_epoch']} | {row['epochs']} "
                     f"| {row['cold_rmse']:.4f} | {row['cold_rmse_no_content_bias']:.4f} "
                     f"| {row['own_id_rmse']:.4f} | {row['seconds']:.0f} |")
    chosen = ", ".join(f"{k}={best[k]:g}" for k in keys)
    edges = [k for k in keys if len(payload["grid"][k]) > 1
             and best[k] in (min(payload["grid"][k]), max(payload["grid"][k]))]
    if edges:
        chosen += f" (at the edge of the grid in {', '.join(edges)}: a wider grid might do better)"
    lines += ["", f"Winner: {chosen}. GanConfig defaults: "
              + ", ".join(f"{k}={getattr(defaults, k):g}" for k in keys)
              + (" (the winner)." if matches else " (**not the winner**: update config.py)."),
              f"Simulated-cold interactions: {payload['rows'][0]['cold_interactions']}. "
              f"Main model fit {payload['main_fit_seconds'] / 60:.1f} min; total "
              f"{payload['wall_seconds'] / 60:.1f} min on {payload['machine']['cpus']} CPUs."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments gan_select", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="movielens-100k")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dir", default="benchmarks", help="the result store")
    p.add_argument("--render", action="store_true",
                   help="only rewrite gan_select.md from gan_select.json (after a change of the "
                        "GanConfig defaults, which the section compares with the winner)")
    args = p.parse_args(argv)
    from experiments import store
    if args.render:
        payload = store.read("gan_select.json", args.dir)
        if payload is None:
            p.error(f"--render: no {store.path('gan_select.json', args.dir)}")
        print(f"wrote {store.write_text('gan_select.md', render(payload), args.dir)}")
        return 0
    payload = select(args.data, args.seed)
    store.write("gan_select.json", payload, args.dir)
    print(f"winner: {payload['best']}; wrote {store.write_text('gan_select.md', render(payload), args.dir)} "
          "(python -m experiments render appends it to BENCHMARKS.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
