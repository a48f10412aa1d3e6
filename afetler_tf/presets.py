"""Named presets of AFETLER's component switches (``Config.afetler``).

One place for the sets of switches the package and its experiments use:

- ``base``: the base two-tower model (every AFETLER component off; the
  base's own temperature, ``tower.temperature``);
- ``streamed``: the network trained from streamed logs (no history attention,
  as histories are not streamed; the in-batch softmax; no item-item channel,
  whose closed-form fit needs the whole log in memory);
- ``fast``: AFETLER for quick iterations (``python -m afetler_tf.fit
  --preset fast``): the in-batch softmax instead of the catalogue's, and the
  target-aware attention trained in the ranking stage only; every component
  stays, the fit is shorter, ratings are a little worse on some data
  (docs/model.md, "Faster fits");
- ``ablations``: one switch off at a time, for the ablation study
  (``experiments``), by the label its row carries.
"""

from __future__ import annotations

BASE = {"fusion": False, "mcau": False, "target_attention": False,
        "attention_weight": 0.0, "category_alignment_weight": 0.0,
        "ranking_head": True, "rating_blend": False, "negative_bank": 0, "negatives": "batch", "item_item": False,
        "temperature": None}  # None: tower.temperature

STREAMED = {"mcau": False, "target_attention": False, "attention_weight": 0.0,
            "negatives": "batch", "item_item": False}

FAST = {"negatives": "batch", "target_attention_stage": "ranking"}

ABLATIONS = {
    "full": {},
    "in-batch softmax": {"negatives": "batch"},
    "no fusion": {"fusion": False},
    "no MCAU": {"mcau": False},
    "no target attention": {"target_attention": False},
    "no attention loss": {"attention_weight": 0.0},
    "no category alignment": {"category_alignment_weight": 0.0},
    "no ranking head": {"ranking_head": False},
    "no user taste": {"user_taste": False},
    "no rating blend": {"rating_blend": False},
    "no item-item channel": {"item_item": False},
    "no popularity prior": {"popularity_prior": False},
    "fast preset": FAST,
}

PRESETS = {"base": BASE, "streamed": STREAMED}
USER_PRESETS = {"fast": FAST}  # python -m afetler_tf.fit --preset NAME (AFETLER only)
