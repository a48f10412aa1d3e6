"""The epoch profile's report (experiments.profile_epoch), on hand-made figures."""

from experiments.profile_epoch import _median_ms, table


def test_the_table_scales_each_part_to_the_reference_epoch():
    result = {"seed": 1, "train_interactions": 72000, "batch_size": 1024, "batches_per_epoch": 71,
              "cpus": 2, "load_average_at_start": 0.1, "reference_epoch_s": 2.0,
              "afetler_epoch_s": 10.0, "afetler_epoch_ratio": 5.0,
              "parts": {"train step": {"ms_per_batch": 100.0, "s_per_epoch": 7.1},
                        "validation ranking (per epoch)": {"ms_per_batch": None, "s_per_epoch": 1.0}}}
    text = table(result)
    assert "| train step | 100.0 | 7.10 | 3.55 |" in text  # 7.1 s / 2.0 s
    assert "| validation ranking (per epoch) | – | 1.00 | 0.50 |" in text
    assert "| AFETLER epoch (fit, 1 epoch, no validation) | | 10.00 | 5.00 |" in text


def test_the_median_of_the_timed_calls_is_taken_after_two_warm_ups():
    calls = []
    assert _median_ms(lambda: calls.append(1), repeats=5) >= 0.0
    assert len(calls) == 7
