"""SavedModel export for TensorFlow Serving (docs/design.md §1, §6).

    python -m export --run runs/afetler --base models          # writes models/<name>/<version>/
    python -m export.local_serving --model models/afetler_index --request req.json

Four models per run, each a SavedModel whose ``serving_default`` signature
takes raw features (strings, floats) and returns named outputs:

- ``<name>_query``: user features [+ history] -> ``embedding`` p_u (batch, d).
- ``<name>_candidate``: item features -> ``embedding`` p_v (batch, d).
- ``<name>_index``: user features [+ history] + ``k`` -> ``item_ids``,
  ``scores`` (batch, k): BruteForce (stock TF Serving) or ScaNN.
- ``<name>_ranker``: user [+ history] + item features -> ``rating``,
  ``score`` (batch,).

This package file imports nothing heavy: ``export.rest`` and
``export.local_serving`` run in processes without afetler_tf or TFRS (the
way TF Serving sees an export); ``export.exporter`` is what imports them.
The latency benchmark of an export is an experiment, outside the package
(``python -m experiments export --run runs/afetler``).
"""
