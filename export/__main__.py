"""``python -m export``: a trained run -> TF Serving models folder.

    python -m export --run runs/afetler --base models            # version max + 1
    python -m export --run runs/afetler --base models --version 3 --overwrite
    python -m export --run runs/afetler --base models --index scann
    python -m export --base models --promote [--version N]        # move "stable"
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0])
    p.add_argument("--run", help="run directory written by python -m afetler_tf.fit --out")
    p.add_argument("--base", required=True, help="models folder (BASE/<model_name>/<version>/)")
    p.add_argument("--version", type=int, help="version number (default: max existing + 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--index", choices=("brute_force", "scann"), default="brute_force",
                   help="retrieval index (scann needs the scann package and a server with its ops)")
    p.add_argument("--name", help="model name prefix (default: the run's model, e.g. afetler)")
    p.add_argument("--serving-base", help="BASE as the server sees it, for models.config "
                                          "(default: the absolute path of --base)")
    p.add_argument("--promote", action="store_true",
                   help="label the version 'stable' (with --run: at once; alone: the newest, "
                        "or --version, once the server has loaded it)")
    args = p.parse_args(argv)
    if args.run is None and not args.promote:
        p.error("give --run DIR to export, or --promote to move the 'stable' label")
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    try:
        if args.run is None:
            from export.serving_config import promote

            version = promote(args.base, args.version, args.serving_base)
            print(f"stable -> version {version} in {args.base}/models.config")
            return 0
        from export.exporter import export_run

        export_run(args.run, args.base, version=args.version, overwrite=args.overwrite,
                   index=args.index, name=args.name, serving_base=args.serving_base,
                   promote=args.promote)
    except (FileExistsError, FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
