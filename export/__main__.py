"""``python -m export``: a trained run -> TF Serving models folder.

    python -m export --run runs/afetler --base models
    python -m export --run runs/afetler --base models --version 3 --overwrite
    python -m export --run runs/afetler --base models --index scann
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run directory written by python -m afetler_tf.fit --out")
    p.add_argument("--base", required=True, help="models folder (BASE/<model_name>/<version>/)")
    p.add_argument("--version", type=int, help="version number (default: max existing + 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--index", choices=("brute_force", "scann"), default="brute_force",
                   help="retrieval index (scann needs the scann package and a server with its ops)")
    p.add_argument("--name", help="model name prefix (default: the run's model, e.g. afetler)")
    p.add_argument("--serving-base", help="BASE as the server sees it, for models.config "
                                          "(default: the absolute path of --base)")
    return p.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    from export.exporter import export_run

    try:
        export_run(args.run, args.base, version=args.version, overwrite=args.overwrite,
                   index=args.index, name=args.name, serving_base=args.serving_base)
    except (FileExistsError, FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
