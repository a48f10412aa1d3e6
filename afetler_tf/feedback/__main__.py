"""Protocol F replay of a feedback loop against the same model frozen after warm-up.

    python -m afetler_tf.feedback --rounds 10 --model two_tower --epochs 8 --out runs/feedback

Writes results.json, rounds.csv, tradeoff.csv, rounds.png and tradeoff.png
under --out (and, with --benchmark DIR, DIR/feedback.json and DIR/feedback.md,
the section BENCHMARKS.md renders).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m afetler_tf.feedback", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", help="model config JSON (as written by afetler_tf.fit)")
    p.add_argument("--feedback-config", help="FeedbackConfig JSON (keys of the dataclass)")
    p.add_argument("--model", choices=("afetler", "two_tower"), help="model (default: config's)")
    p.add_argument("--data", help="movielens-100k or a data folder (default: config's)")
    p.add_argument("--epochs", type=int, help="maximum warm-up epochs")
    p.add_argument("--k", type=int, help="list length")
    p.add_argument("--betas", type=float, nargs="+", help="exposure shares of the trade-off curve")
    p.add_argument("--no-dbgd", action="store_true", help="keep the source weights fixed")
    p.add_argument("--seed", type=int)
    p.add_argument("--benchmark", metavar="DIR", help="also write DIR/feedback.{json,md}")
    return p


def _configs(args):
    from afetler_tf.config import Config
    from afetler_tf.feedback.config import FeedbackConfig
    from afetler_tf.files import read_json
    model = Config.from_json(args.config) if args.config else Config()
    sections = {}
    if args.model:
        model = model.replace(model=args.model)
    if args.data:
        sections["data"] = {"source": args.data}
    if args.epochs:
        sections["train"] = {"epochs": args.epochs}
    model = model.replace(**sections)
    raw = read_json(args.feedback_config) if args.feedback_config else {}
    raw["rounds"] = args.rounds
    for key, value in (("k", args.k), ("seed", args.seed),
                       ("betas", tuple(args.betas) if args.betas else None)):
        if value is not None:
            raw[key] = value
    if args.no_dbgd:
        raw["dbgd"] = False
    return model, FeedbackConfig.from_dict(raw)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model_config, config = _configs(args)
        if model_config.model not in ("afetler", "two_tower"):
            raise ValueError(f"The feedback loop fine-tunes towers: use afetler or two_tower, "
                             f"not {model_config.model!r}.")
        from afetler_tf.feedback.experiment import run_feedback
        result = run_feedback(model_config, config, out_dir=args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.benchmark:
        from afetler_tf import files
        from afetler_tf.feedback.report import benchmark_section
        files.write_json(os.path.join(args.benchmark, "feedback.json"), result)
        command = "python -m afetler_tf.feedback " + " ".join(argv if argv is not None else sys.argv[1:])
        files.atomic_write_text(os.path.join(args.benchmark, "feedback.md"), benchmark_section(result, command))
    for arm, summary in result["summary"].items():
        print(f"{arm}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in summary.items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
