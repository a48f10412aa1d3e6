"""The epoch profile's report (experiments.profile_epoch), on hand-made figures."""

from experiments import profile_epoch
from experiments.profile_epoch import median_ms, second_epoch_seconds, table


def test_the_table_scales_each_part_to_the_reference_epoch():
    result = {"seed": 1, "train_interactions": 72000, "batch_size": 1024, "batches_per_epoch": 71,
              "cpus": 2, "load_average_at_start": 0.1, "reference_epoch_s": 2.0,
              "afetler_epoch_s": 10.0, "afetler_epoch_ratio": 5.0,
              "parts": {"train step": {"ms_per_batch": 100.0, "s_per_epoch": 7.1},
                        "validation ranking (per epoch)": {"ms_per_batch": None, "s_per_epoch": 1.0}}}
    text = table(result)
    assert "| train step | 100.0 | 7.10 | 3.55 |" in text  # 7.1 s / 2.0 s
    assert "| validation ranking (per epoch) | – | 1.00 | 0.50 |" in text
    assert "| AFETLER epoch (second of a fit, no validation) | | 10.00 | 5.00 |" in text


def test_the_median_of_the_timed_calls_is_taken_after_two_warm_ups():
    calls = []
    assert median_ms(lambda: calls.append(1), repeats=5) >= 0.0
    assert len(calls) == 7
    assert median_ms(lambda: calls.append(1), repeats=3, warm_ups=5) >= 0.0
    assert len(calls) == 15


def test_the_timed_epoch_is_the_second_from_its_start_to_its_end(monkeypatch):
    """A fake clock and a fake fit: the first epoch (tracing) and the time
    between epochs (the input's set-up and teardown) are left out."""
    clock = [0.0]
    monkeypatch.setattr(profile_epoch.time, "perf_counter", lambda: clock[0])

    class FakeModel:
        def fit(self, dataset, epochs, verbose, callbacks):
            for epoch, (inside, between) in enumerate([(5.0, 7.0), (2.0, 11.0)][:epochs]):
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                clock[0] += inside
                for callback in callbacks:
                    callback.on_epoch_end(epoch)
                clock[0] += between  # the dropped iterator's teardown, the next one's set-up
    assert second_epoch_seconds(FakeModel(), dataset=None) == 2.0


def test_the_speed_section_gives_every_row_as_a_ratio_to_the_reference():
    from experiments.speed_report import rows, section
    payload = {"machine": {"platform": "p", "cpus": 2, "tensorflow": "2.20.0",
                           "load_average_at_start": 0.2},
               "seed": 1,
               "reference": {"train_interactions": 1000, "epoch_seconds": 0.5, "fit_seconds": 10.0,
                             "fit_epochs": 10, "afetler_steady_epoch_seconds": 3.0},
               "models": [{"model": "afetler", "wall_seconds": 50.0, "ndcg@10": 0.44, "rmse": 0.9,
                           "stages": {"gan": {"seconds": 3.0, "epochs": 3},  # as JSON sorts them
                                      "joint": {"seconds": 8.0, "epochs": 4},
                                      "taste": {"seconds": 1.0, "epochs": None}}},
                          {"model": "afetler_fast", "wall_seconds": 30.0, "ndcg@10": 0.44, "rmse": 0.91,
                           "stages": {"joint": {"seconds": 5.0, "epochs": 4}}}],
               "streamed": {"size": "1M@1Mitems", "steps": 200, "warmup": 20, "batch": 1024,
                            "interactions": 1_000_000,
                            "catalogue_items": 1_000_000, "examples_per_second": 500.0,
                            "peak_rss_mib": 1.0}}
    table = {r[0]: r[1:] for r in rows(payload)}
    names = list(table)
    assert names.index("afetler: stage joint") < names.index("afetler: stage gan")  # the fit's order
    # reference: 1000 examples in 0.5 s = 2000/s; its fit 10 epochs in 10 s = 1000/s
    assert table["reference: plain TFRS two-tower, second epoch of a fit"] == (1, 0.5, 0.5, 2000.0, 1.0)
    assert table["reference: whole fit (10 epochs, tracing included)"] == (10, 10.0, 1.0, 1000.0, 1.0)
    # the joint stage: 2 s an epoch = 4x the reference epoch; 4 passes of 1000 in 8 s
    assert table["afetler: stage joint"] == (4, 8.0, 2.0, 500.0, 4.0)
    steady = table["afetler: joint epoch, the same way (no validation)"]
    assert steady == (1, 3.0, 3.0, 1000 / 3.0, 6.0)  # 3 s over the reference's 0.5 s
    assert table["afetler: stage gan"] == (3, 3.0, 1.0, None, None)  # items, not the log
    assert table["afetler: stage taste"] == (None, 1.0, None, None, None)
    whole = table["afetler: whole fit (`python -m afetler_tf.fit`, process wall time)"]
    assert whole == (None, 50.0, None, None, 5.0)  # 50 s / the reference's 10 s
    streamed = table["streamed: 1,000,000 interactions, 1,000,000-item catalogue (batches 21-200 of 1024)"]
    assert streamed[3:] == (500.0, 4.0)  # 2000/s over 500/s
    text = section(payload)
    assert "| afetler: stage joint | 4 | 8.0 | 2.00 | 500 | 4.00 |" in text
    assert "AFETLER joint epoch 6.0x the reference epoch" in text
    assert "target <= 2x: missed" in text and "target <= 45 s: missed" in text
    assert "500 examples/s (target >= 40,000: missed)" in text
    assert "afetler NDCG@10 0.4400, RMSE 0.9000" in text
    assert table["afetler_fast: whole fit (`python -m afetler_tf.fit`, process wall time)"][-1] == 3.0
    assert "AFETLER `--preset fast` fit 30.0 s wall" in text
