"""Where the time of one call goes, op by op: a served request or a training step.

    python -m experiments op_profile serving --index DIR/afetler_index/1 --run RUN [--batch 1]
    python -m experiments op_profile train [--seed 1] [--steps 20]
    python -m experiments op_profile gan [--seed 1] [--steps 20]
    python -m experiments op_profile item_level [--rows 1 16 32 64 256 1024]

``serving``: the exported index's ``serving_default`` for ``--batch`` real users
of ``RUN`` (with their whole training histories, k = 10, as
``export_bench.request_features`` makes them), loaded into a TF1 session
(``tf.compat.v1.saved_model.load``) and run with full tracing; each op's time
is averaged over ``--traces`` calls after warm-up. ``train``: AFETLER's joint
training step on MovieLens-100k (default config, the epoch's first batch, as
``python -m experiments profile`` prepares it), ``--steps`` calls under the
TensorFlow profiler, its ``framework_op_stats`` summed by op type; ``gan``: the
same for a NewItemGAN training step (:func:`gan_ops`). Each prints
the largest ops; times are the ops' own (several threads: their sum can exceed
the wall time). ``item_level``: MCAU's item level as it runs it (one plain
matmul over [h, h * q], ``afetler_tf.layers.mcau._item_level``) and as one
matrix per row (:func:`item_level_per_row`, a batched matmul), forward and
forward + backward, median ms per call at each ``--rows`` (L = 30, the default
history length, e = A = 32, one head): which is faster depends on the CPU.
Run it on a quiet machine; nothing is written to benchmarks/.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import sys
import tempfile
import time
from typing import Optional, Sequence


def top(times: dict, calls: int, n: int) -> list:
    """``times``: key -> total microseconds over ``calls``; the ``n`` largest as
    (key, microseconds per call, share of the total), largest first."""
    total = sum(times.values()) or 1.0
    ranked = sorted(times.items(), key=lambda kv: -kv[1])[:n]
    return [(key, us / calls, us / total) for key, us in ranked]


def serving_ops(index_dir: str, features: dict, traces: int = 20, warmup: int = 30) -> tuple:
    """(ms per call untraced, {(op name, op type): total us over ``traces`` calls})."""
    import tensorflow as tf
    graph = tf.Graph()
    with graph.as_default():
        session = tf.compat.v1.Session(graph=graph)
        meta = tf.compat.v1.saved_model.load(session, ["serve"], index_dir)
        signature = meta.signature_def["serving_default"]
        feed = {t.name: features[key] for key, t in signature.inputs.items()}
        fetch = {key: t.name for key, t in signature.outputs.items()}
        for _ in range(warmup):
            session.run(fetch, feed)
        start = time.perf_counter()
        for _ in range(100):
            session.run(fetch, feed)
        ms = (time.perf_counter() - start) * 10.0
        times = collections.Counter()
        for _ in range(traces):
            options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
            metadata = tf.compat.v1.RunMetadata()
            session.run(fetch, feed, options=options, run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    kind = node.timeline_label.split("(")[0].split("=")[-1].strip()
                    times[(node.node_name, kind)] += node.op_end_rel_micros - node.op_start_rel_micros
    return ms, times


def train_ops(seed: int = 1, steps: int = 20) -> dict:
    """{(op name, op type): total us over ``steps`` joint training steps}."""
    import tensorflow as tf

    from experiments.profile_epoch import prepared_joint_stage

    network, dataset = prepared_joint_stage(seed)[4:]
    batch = next(iter(dataset))
    return _profiled(tf.function(lambda: network.train_step(batch)), steps)


def gan_ops(seed: int = 1, steps: int = 20) -> dict:
    """{(op name, op type): total us over ``steps`` NewItemGAN training steps}:
    the GAN stage's first batch on MovieLens-100k (default config), against
    towers trained for one joint epoch (a step's ops do not depend on how
    well the towers are trained)."""
    import pandas as pd
    import tensorflow as tf

    from afetler_tf import training
    from afetler_tf.config import Config
    from afetler_tf.models import build_model, new_items
    from afetler_tf.runs.training_run import prepare

    config = Config().replace(data={"seed": seed}, train={"seed": seed, "epochs": 1})
    data, split = prepare(config, verbose=0)
    model = build_model(config)
    model.fit(data, split, verbose=0, skip_stages=("ranking", "gan", "taste", "rating_blend"))
    train = new_items.gan_frames(model, split, new_items.warm_items(split.train, 1))[0]
    users = sorted(set(train["user_id"].astype(str)))
    items = sorted(set(train["item_id"].astype(str)))
    p_u = pd.DataFrame(model.tower_user_vectors(users), index=users)
    p_v = pd.DataFrame(training.batched(model.network.candidate_tower, model.space.item_features(items)),
                       index=items)
    gan = new_items.build_gan(model)
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(config.gan.g_learning_rate),
                d_optimizer=tf.keras.optimizers.Adam(config.gan.d_learning_rate))
    dataset = training.make_dataset(new_items.gan_examples(model, train, p_u, p_v), None,
                                    config.gan.batch_size, shuffle=True, seed=seed)
    batch = next(iter(dataset))
    return _profiled(tf.function(lambda: gan.train_step(batch)), steps)


def _profiled(step, steps: int) -> dict:
    """{(op name, op type): total us} of ``steps`` calls of ``step`` (after 5 unprofiled)."""
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    for _ in range(5):
        step()
    logdir = tempfile.mkdtemp(prefix="op_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        step()
    tf.profiler.experimental.stop()
    path = sorted(glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"))[-1]
    raw, _ = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    table = json.loads(raw)[0]
    columns = [c["id"] for c in table["cols"]]
    times = collections.Counter()
    for row in table["rows"]:
        values = dict(zip(columns, [cell.get("v") for cell in row["c"]]))
        times[(values["operation"], values["type"])] += values["total_self_time"]
    return times


def item_level_per_row(history, query, w_h, w_hq):
    """MCAU's item level as one matrix per row, h (W_h + diag(q) W_hq): the
    alternative to ``afetler_tf.layers.mcau._item_level`` (the same values, a
    batched matmul; what MCAU ran from many rows on until 2026-11-30)."""
    import tensorflow as tf
    batch, e = tf.shape(history)[0], tf.shape(history)[-1]
    heads, units = tf.shape(w_h)[0], tf.shape(w_h)[-1]
    per_row = w_h[tf.newaxis] + query[:, tf.newaxis, :, tf.newaxis] * w_hq[tf.newaxis]  # (B, H, e, A)
    per_row = tf.reshape(tf.transpose(per_row, [0, 2, 1, 3]), [batch, e, heads * units])
    return tf.matmul(history, per_row)  # (B, L, H * A)


def item_level(rows: int, repeats: int = 30, length: int = 30, width: int = 32) -> dict:
    """Median ms per call of MCAU's item level at ``rows`` rows, as MCAU runs it
    (one plain matmul over [h, h ⊙ q]) and as one matrix per row:
    {"per_row" | "stacked": {"forward": ms, "forward+backward": ms}}."""
    import tensorflow as tf

    from afetler_tf.layers import mcau
    from experiments.profile_epoch import median_ms
    history = tf.random.stateless_normal([rows, length, width], seed=[1, 2])
    query = tf.random.stateless_normal([rows, width], seed=[3, 4])
    w_h = tf.Variable(tf.random.stateless_normal([1, width, width], seed=[5, 6]) * 0.1)
    w_hq = tf.Variable(tf.random.stateless_normal([1, width, width], seed=[7, 8]) * 0.1)
    out = {}
    for name, form in (("per_row", item_level_per_row), ("stacked", mcau._item_level)):
        def forward(form=form):
            return tf.tanh(form(history, query, w_h, w_hq))

        def both(form=form):
            with tf.GradientTape() as tape:
                tape.watch(history)
                loss = tf.reduce_sum(tf.tanh(form(history, query, w_h, w_hq)) ** 2)
            return tape.gradient(loss, [w_h, w_hq, history])
        out[name] = {}
        for label, fn in (("forward", tf.function(forward)), ("forward+backward", tf.function(both))):
            out[name][label] = median_ms(fn, repeats, warm_ups=5)
    return out


def by_type(times: dict) -> dict:
    """Op times summed by op type."""
    out = collections.Counter()
    for (_, kind), us in times.items():
        out[kind] += us
    return out


def _print(title: str, rows: list, width: int = 90) -> None:
    print(title)
    for key, us, share in rows:
        name = key if isinstance(key, str) else f"{key[1]:24s} {key[0][-width:]}"
        print(f"{us:10.1f} us  {100 * share:5.1f}%  {name}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments op_profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("serving", "train", "gan", "item_level"))
    p.add_argument("--index", help="serving: an exported index version folder")
    p.add_argument("--run", help="serving: the run whose users make the request")
    p.add_argument("--batch", type=int, default=1, help="serving: users per request")
    p.add_argument("--traces", type=int, default=20)
    p.add_argument("--seed", type=int, default=1, help="train: split and model seed")
    p.add_argument("--steps", type=int, default=20, help="train: profiled steps")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--rows", type=int, nargs="+", default=[1, 16, 32, 64, 256, 1024],
                   help="item_level: rows (users) a call")
    args = p.parse_args(argv)
    if args.what == "serving":
        if not (args.index and args.run):
            p.error("serving needs --index and --run")
        from afetler_tf.runs.training_run import load_run
        from experiments.export_bench import request_features
        features = request_features(load_run(args.run), args.batch)
        features["k"] = 10
        ms, times = serving_ops(args.index, features, args.traces)
        print(f"{args.index}: {args.batch} user(s) a request, {ms:.3f} ms a call (untraced); "
              f"ops' own time {sum(times.values()) / args.traces:.1f} us a call")
        _print("by op type:", top(by_type(times), args.traces, 10))
        _print("largest ops:", top(times, args.traces, args.top))
    elif args.what == "item_level":
        print("MCAU item level, median ms a call (per row | stacked, as MCAU runs it), "
              "L = 30, e = A = 32:")
        for rows in args.rows:
            m = item_level(rows)
            print(f"{rows:6d} rows  forward {m['per_row']['forward']:.3f} | "
                  f"{m['stacked']['forward']:.3f}   forward+backward "
                  f"{m['per_row']['forward+backward']:.3f} | {m['stacked']['forward+backward']:.3f}",
                  flush=True)
    else:
        times = (train_ops if args.what == "train" else gan_ops)(args.seed, args.steps)
        step = "joint train step" if args.what == "train" else "NewItemGAN train step"
        print(f"AFETLER {step}, MovieLens-100k seed {args.seed}: ops' own time "
              f"{sum(times.values()) / args.steps / 1000:.1f} ms a step (all threads)")
        _print("by op type:", top(by_type(times), args.steps, args.top))
        _print("largest ops:", top(times, args.steps, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
