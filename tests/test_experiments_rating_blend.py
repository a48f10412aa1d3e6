"""The rating-blend diagnostic (experiments.rating_blend): weights, blend and errors by hand."""

import numpy as np
import pytest

from experiments import rating_blend


def test_blend_weights_are_the_validation_least_squares_fit():
    # ratings = 1 + 0.5 a + 0.25 b exactly: the fit recovers the three weights
    a, b = np.array([2.0, 4.0, 3.0, 5.0]), np.array([4.0, 0.0, 2.0, 4.0])
    ratings = 1 + 0.5 * a + 0.25 * b
    weights = rating_blend.fit_blend({"a": a, "b": b}, ratings, ("a", "b"))
    np.testing.assert_allclose(weights, [1.0, 0.5, 0.25], atol=1e-12)
    np.testing.assert_allclose(rating_blend.blended({"a": a, "b": b}, weights, ("a", "b")), ratings)


def test_errors_clip_to_the_rating_range_by_hand():
    # clipped predictions 1, 5, 3 against 1, 4, 4: errors 0, 1, -1
    out = rating_blend.errors(np.array([0.0, 6.0, 3.0]), np.array([1.0, 4.0, 4.0]))
    assert out["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert out["mae"] == pytest.approx(2 / 3)


def test_table_means_over_seeds():
    row = lambda r, m: {"test": {"rmse": r, "mae": m}}
    text = rating_blend.table({"ml": {"1": {"afetler": row(0.9, 0.7)}, "2": {"afetler": row(0.8, 0.6)}}})
    assert "| ml | afetler | 1, 2 | 0.8500 | 0.6500 |" in text


def test_an_unknown_data_set_is_refused_before_any_fit(capsys):
    with pytest.raises(SystemExit):
        rating_blend.main(["--datasets", "no-such-log"])
    assert "invalid choice: 'no-such-log'" in capsys.readouterr().err
