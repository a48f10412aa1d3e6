"""The suites of ``python -m experiments``, by name.

Each suite is a module of this package with a ``main(argv)``; the registry
names it (as a string: nothing is imported until a suite runs, and no suite
imports the registry) with the arguments that select the suite and what it
writes into the result store (``benchmarks/``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    module: str  # experiments.<module>, whose main(argv) runs it
    about: str
    writes: str
    args: tuple = ()  # put before the caller's options


BENCHMARK_SUITES = ("main", "seeds", "ablation", "cold")  # experiments.benchmark.SUITES

SUITES = {s.name: s for s in (
    Suite("main", "benchmark", "every model, random split, seed 42 (protocols R and T; speed)",
          "main.json, main.png", ("--suite", "main")),
    Suite("seeds", "benchmark", "every model, random split, seeds 1-3 (mean ± std)",
          "seeds.json, seeds.png", ("--suite", "seeds")),
    Suite("ablation", "benchmark", "AFETLER without each component, seeds 1-3",
          "ablation.json", ("--suite", "ablation")),
    Suite("cold", "benchmark", "new items: cold-items split, protocol C, seeds 1-3",
          "cold.json", ("--suite", "cold")),
    Suite("datasets", "datasets", "every model + iALS on MovieLens-100k (random, temporal) and "
          "five planted synthetic logs, seeds 1-3", "datasets.json, datasets.md"),
    Suite("peers", "peers", "public peers beside AFETLER on MovieLens-100k, seeds 1-3: Cornac's "
          "BiVAE, EASE and WMF, implicit's iALS (settings on validation)",
          "peers.json (rendered with the seeds suite's AFETLER rows)"),
    Suite("gan_select", "gan_select", "NewItemGAN's learning rate and dropout, on validation data",
          "gan_select.json, gan_select.md"),
    Suite("stage_settings", "stage_settings", "a later stage's setting (the ranking learning rate, the "
          "item-item channel's EASE penalty) on validation data, over the datasets suite's data sets",
          "stage_settings.json, stage_settings.md"),
    Suite("variants", "variants", "named configurations compared on the validation split",
          "variants.jsonl, variants.md"),
    Suite("tuning_compare", "tuning_compare", "default vs tuned config after a tuning.search, test once",
          "tuning.json, tuning.md"),
    Suite("export", "export_bench", "latency of the exported retrieval index (and ScaNN recall)",
          "export.json, export.md"),
    Suite("index_ab", "index_ab", "interleaved latency of exported indexes (e.g. two commits' exports)",
          "nothing (prints the ratios)"),
    Suite("feedback", "feedback", "protocol F replay: feedback loop vs frozen model, marketing",
          "feedback.json, feedback.md (with --benchmark)"),
    Suite("scale", "scale_bench", "streamed training throughput and peak memory vs log size",
          "scale.json, scale.md, scale.png"),
    Suite("profile", "profile_epoch", "where an AFETLER epoch's time goes, vs a plain TFRS two-tower",
          "the --json FILE given (nothing in benchmarks/)"),
    Suite("fit_profile", "fit_profile", "where a whole default fit's time goes, stage by stage: "
          "epochs, validation, checkpoints, tracing, set-up", "the --json FILE given (nothing in "
          "benchmarks/)"),
    Suite("speed", "speed", "training speed vs a plain TFRS two-tower in the same run: two-tower, "
          "AFETLER's stages and whole fit, the streamed path at 1M", "speed.json, speed.md"),
    Suite("rating_blend", "rating_blend", "AFETLER's rating blended with MF's and DeepFM's, weights "
          "on validation, test RMSE / MAE (a lead for issue 19, not the model)",
          "the --json FILE given (nothing in benchmarks/)"),
    Suite("op_profile", "op_profile", "op by op: a served request or an AFETLER training step",
          "nothing (prints the largest ops)"),
    Suite("serving_parity", "serving_parity", "exported index and ranker vs the Python API",
          "the --json FILE given (nothing in benchmarks/)"),
)}


def listing() -> str:
    """The table ``python -m experiments list`` prints."""
    width = max(map(len, SUITES))
    lines = ["python -m experiments SUITE [options]; suites:", ""]
    for suite in SUITES.values():
        lines += [f"  {suite.name:<{width}}  {suite.about}", f"  {'':<{width}}  writes {suite.writes}"]
    lines += ["", f"  {'render':<{width}}  BENCHMARKS.md from benchmarks/ (no suite runs)"]
    return "\n".join(lines)
