"""scale_report: the growth lines and targets are computed from the payload, not typed."""

import os

from experiments import scale_report
from experiments.scale_report import exponent


def _size(name, n, items, seen_items, seen_users, speed, rss):
    return {"size": name, "interactions": n, "catalogue_items": items, "catalogue_users": items,
            "items": seen_items, "users": seen_users, "examples_per_second": speed,
            "peak_rss_mib": rss, "setup_seconds": n / 1e5}


def test_exponent_by_hand():
    assert abs(exponent([10, 100, 1000], [5, 50, 500]) - 1.0) < 1e-12
    assert abs(exponent([1, 100], [10, 1]) + 0.5) < 1e-12


def test_report_states_targets_and_vocabulary_growth(tmp_path):
    payload = {"machine": {"platform": "test", "cpus": 2, "tensorflow": "2.20", "load_average_at_start": 0.5},
               "settings": {"steps": 200, "warmup": 20, "batch": 1024, "optimizer": "lazy_adam"},
               "sizes": [_size("1M@1Mitems", 10**6, 10**6, 1000, 2000, 5000.0, 1000.0),
                         _size("10M", 10**7, 10**6, 4000, 3000, 4500.0, 1500.0)],
               "workers": []}
    scale_report.write(payload, str(tmp_path))
    text = open(os.path.join(tmp_path, "scale.md")).read()
    assert "peak RSS x1.50 (target <= 2" in text
    assert "throughput x0.90 (target within 20%: met)" in text
    assert "4.0x the item rows and 1.5x the user rows" in text
    assert "optimizer `lazy_adam`" in text and "load average 0.5" in text
    assert os.path.getsize(os.path.join(tmp_path, "scale.png")) > 0
    payload["sizes"][1]["examples_per_second"] = 3000.0
    scale_report.write(payload, str(tmp_path))
    assert "throughput x0.60 (target within 20%: NOT met)" in open(os.path.join(tmp_path, "scale.md")).read()
