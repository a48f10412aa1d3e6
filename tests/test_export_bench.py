"""``python -m experiments export`` on the tiny run: rows, recall and the markdown table."""

import numpy as np

from experiments import export_bench as bench
from experiments import export_bench_report as bench_report
from export import exporter
from export.specs import InputSpecs
from test_export_support import tiny_result


def test_bench_rows_and_table(tmp_path_factory, tiny_data, monkeypatch):
    monkeypatch.setattr(bench, "BUDGET_S", {"1": 0.001, "batch": 0.001})  # about 10 calls each
    result = tiny_result(tmp_path_factory, tiny_data)
    exporter.warm_up(result)
    inputs = InputSpecs.from_model(result.model)
    features = bench.request_features(result, bench.BATCH)
    width = result.model.item_vectors(["i0"]).shape[1]  # d = 8 + the item-item channel's rank
    ids, vectors = bench.synthetic_catalogue(300, width)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5) and ids[2] == "s2"
    rows = bench.bench_catalogue(result, inputs, "synthetic-300", ids, vectors, features,
                                 scann=bench.scann_version())
    exact = rows[0]
    assert exact["index"] == "brute_force" and exact["recall@10"] == 1.0 and exact["calls_1"] >= 10
    assert 0 < exact["p50_ms_1"] <= exact["p99_ms_1"] and exact["p50_ms_256"] > 0
    assert rows[1]["index"] == "scann" and (rows[1].get("status") == "not installed"
                                            or rows[1]["recall@10"] > 0.5)
    report = {"run": "r", "model": "afetler", "dimension": width, "k": 10, "batch": 256, "cpus": 2,
              "tensorflow": "2.20.0", "scann": None, "rows": rows, "bench_seconds": 1.0}
    text = bench_report.markdown(report)
    assert "| synthetic-300 | 300 | brute_force |" in text and "recall@10" in text
    assert bench.recall(np.array([["a", "b"]]), np.array([["b", "c"]])) == 0.5


def test_targets_per_serving_variant():
    def row(index, p1, p256, **variant):
        return dict(catalogue="ml-100k", index=index, items=1682, build_s=1.0, p50_ms_1=p1, p99_ms_1=p1,
                    p50_ms_256=p256, p99_ms_256=p256, **{"recall@10": 1.0}, **variant)
    rows = [row("brute_force", 1.02, 6.2), row("brute_force", 0.86, 4.7, xla=True, inter_op=1),
            dict(row("scann", 1.2, 80.0), catalogue="synthetic-1m", **{"recall@10": 0.96})]
    lines = bench_report.targets({"rows": rows})
    assert lines[0] == ("- ML-100k BruteForce, 1 request p50 1.02 ms (<= 1 ms: missed); "
                        "batch 256 p50 6.20 ms (<= 5 ms: missed)")
    assert lines[1] == ("- ML-100k BruteForce + XLA + inter-op 1, 1 request p50 0.86 ms (<= 1 ms: met); "
                        "batch 256 p50 4.70 ms (<= 5 ms: met)")
    assert lines[2] == "- 1M ScaNN, 1 request p50 1.20 ms, recall@10 0.960 (met)"


def test_index_ab_interleaves_and_reverses_the_order():
    from experiments.index_ab import interleaved
    order = []

    def measure(name):
        order.append(name)
        return (len(order), 10.0 * len(order))
    result = interleaved({"a": "a", "b": "b"}, 3, measure)
    assert order == ["a", "b", "b", "a", "a", "b"]
    np.testing.assert_allclose(result["a"], [4.0, 40.0])  # median of calls 1, 4, 5
    np.testing.assert_allclose(result["b"], [3.0, 30.0])  # median of calls 2, 3, 6


def test_op_profile_ranks_ops_and_sums_them_by_type():
    from experiments.op_profile import by_type, top
    from experiments.registry import SUITES
    times = {("a/MatMul", "MatMul"): 60.0, ("b/MatMul", "MatMul"): 20.0, ("c", "Gather"): 20.0}
    assert by_type(times) == {"MatMul": 80.0, "Gather": 20.0}
    rows = top(times, calls=2, n=2)  # per call, share of the total
    assert rows == [(("a/MatMul", "MatMul"), 30.0, 0.6), (("b/MatMul", "MatMul"), 10.0, 0.2)]
    assert top(by_type(times), 2, 1) == [("MatMul", 40.0, 0.8)]
    assert SUITES["op_profile"].module == "op_profile"


def test_op_profile_times_both_item_level_formulations():
    """Both formulations it times give MCAU's values; each is timed."""
    import tensorflow as tf

    from afetler_tf.layers.mcau import _item_level
    from experiments.op_profile import item_level, item_level_per_row
    h = tf.random.stateless_normal([5, 7, 6], seed=[1, 1])
    q = tf.random.stateless_normal([5, 6], seed=[2, 2])
    w_h = tf.random.stateless_normal([2, 6, 4], seed=[3, 3])
    w_hq = tf.random.stateless_normal([2, 6, 4], seed=[4, 4])
    np.testing.assert_allclose(item_level_per_row(h, q, w_h, w_hq).numpy(),
                               _item_level(h, q, w_h, w_hq).numpy(), atol=1e-5)
    m = item_level(rows=2, repeats=2, length=3, width=4)
    assert set(m) == {"per_row", "stacked"}
    assert all(m[f][part] > 0 for f in m for part in ("forward", "forward+backward"))
