"""Synthetic interaction logs with planted structure, for the ``datasets`` suite.

Each generator returns an ``afetler_tf`` :class:`~afetler_tf.data.schema.Dataset`
(the canonical tables, built by :func:`afetler_tf.data.tables.dataset`) and is
deterministic given its seed; ``with_truth=True`` also returns the planted
ground truth (the tests check each mechanism against it). :data:`MECHANISMS`
states each mechanism in one line (the rendered tables quote it).

The shared world (:func:`_world`): items ``i<j>`` in ``CATEGORIES`` categories
(item j: category j mod K, the helper :func:`afetler_tf.data.synthetic.catalogue`
builds the user and item tables), a latent taste vector per user
(theta_u ~ N(0, I_d)) and per item (phi_j = mu_category + 0.6 N(0, I_d)); the
taste of user u for item j is s(u, j) = theta_u . phi_j / sqrt(d), standardised
over the catalogue. A user's number of interactions is long-tailed (at least
``MIN_PER_USER``); the user picks that many distinct items by sampling
without replacement from softmax(pick logits) (Gumbel top-k), and rates a
picked item ``round(3.5 + s - mean(s over the picks) + N(0, 0.6))``
clipped to 1-5 (centred, so the mean rating is about MovieLens' 3.5).
Timestamps: each user is active over a random stretch of a 180-day window.
The generators differ in the pick logits and in what the rating follows.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data import tables
from afetler_tf.data.schema import Dataset
from afetler_tf.data.synthetic import catalogue

CATEGORIES = 12
DIM = 16
MIN_PER_USER = 5
RATING_MEAN, RATING_SLOPE, RATING_NOISE = 3.5, 1.0, 0.6
TASTE_STRENGTH = 2.0  # beta: pick logit per unit of standardised taste
START = 1_600_000_000  # first timestamp (seconds)
WINDOW = 180 * 86_400  # the log's time span

MECHANISMS = {
    "taste": "users pick items by latent taste (softmax of 2.0 x taste + a mild item bias) and "
             "rate them by the same taste",
    "popularity": "users pick items by popularity (Zipf over a random item rank) and promotions "
                  "(3% of items boosted), independent of taste; they rate them by latent taste",
    "implicit": "the taste log's picks with no ratings at all (implicit-only data)",
    "longtail": "a 20,000-item catalogue with Zipf(1.1) popularity; picks follow popularity and "
                "taste, ratings follow taste",
    "attributes": "preference = age group x category + region x category + age group x price "
                  "(+ a small individual taste); picks and ratings follow it, so user and item "
                  "attributes carry the signal",
}


@dataclasses.dataclass(frozen=True)
class Size:
    users: int
    items: int
    interactions: int


# The suite's sizes (MovieLens-like) and the --quick ones (tests).
SIZES = {
    "full": {"default": Size(3_000, 2_000, 60_000), "longtail": Size(5_000, 20_000, 100_000)},
    "quick": {"default": Size(300, 400, 5_000), "longtail": Size(300, 20_000, 5_000)},
}


def size_of(name: str, quick: bool = False) -> Size:
    table = SIZES["quick" if quick else "full"]
    return table.get(name, table["default"])


def _world(size: Size, seed: int) -> dict:
    """Users' and items' tables and latent tastes (module docstring)."""
    rng = np.random.default_rng(seed)
    users, items = catalogue(size.users, size.items, CATEGORIES, seed)
    category = np.arange(size.items) % CATEGORIES
    centres = rng.normal(size=(CATEGORIES, DIM))
    phi = centres[category] + 0.6 * rng.normal(size=(size.items, DIM))
    theta = rng.normal(size=(size.users, DIM))
    raw = theta @ phi.T / np.sqrt(DIM)
    taste = (raw - raw.mean()) / raw.std()
    return {"rng": rng, "users": users, "items": items, "category": category, "theta": theta,
            "phi": phi, "taste": taste}


def _activity(rng, size: Size) -> np.ndarray:
    """Interactions per user: MIN_PER_USER + a lognormal share of the rest (sums to the size)."""
    per_user = min(MIN_PER_USER, size.interactions // size.users)
    weights = rng.lognormal(0.0, 0.8, size.users)
    counts = per_user + rng.multinomial(size.interactions - per_user * size.users,
                                        weights / weights.sum())
    return np.minimum(counts, size.items // 2)


def _pick(rng, logits_of, counts: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) rows: user u draws counts[u] distinct items with probability
    softmax(logits_of(users)[u]) sequentially without replacement (Gumbel top-k)."""
    users, items = [], []
    for lo in range(0, len(counts), chunk):
        block = np.arange(lo, min(lo + chunk, len(counts)))
        logits = logits_of(block)
        noisy = logits + rng.gumbel(size=logits.shape)
        k = int(counts[block].max())
        top = np.argpartition(-noisy, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(noisy, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        for row, u in enumerate(block):
            users.append(np.full(counts[u], u))
            items.append(top[row, :counts[u]])
    return np.concatenate(users), np.concatenate(items)


def _times(rng, user: np.ndarray, n_users: int) -> np.ndarray:
    """Each user active over a random stretch of the window; times in that stretch."""
    start = rng.uniform(0, 0.8 * WINDOW, n_users)
    span = rng.uniform(0.02, 0.2, n_users) * WINDOW
    return (START + start[user] + rng.uniform(0, 1, len(user)) * span[user]).astype(np.int64)


def _ratings(rng, taste: np.ndarray) -> np.ndarray:
    """round(3.5 + (taste - its mean over the picks) + N(0, 0.6)), clipped to 1-5."""
    centred = taste - taste.mean()  # picks lean to high taste: centre them (mean rating ~3.5)
    noisy = RATING_MEAN + RATING_SLOPE * centred + rng.normal(0, RATING_NOISE, len(taste))
    return np.clip(np.round(noisy), 1, 5)


def _dataset(name: str, world: dict, user: np.ndarray, item: np.ndarray,
             rating: Optional[np.ndarray], users: Optional[pd.DataFrame] = None,
             items: Optional[pd.DataFrame] = None) -> Dataset:
    rng = world["rng"]
    users = world["users"] if users is None else users
    items = world["items"] if items is None else items
    times = _times(rng, user, len(users))
    order = np.argsort(times, kind="stable")  # the log in time order
    inter = tables.interactions(users["user_id"].to_numpy()[user[order]],
                                items["item_id"].to_numpy()[item[order]],
                                np.full(len(user), np.nan) if rating is None else rating[order],
                                times[order])
    extra_users = {c: users[c] for c in users.columns if c != "user_id"}
    extra_items = {c: items[c] for c in items.columns
                   if c not in ("item_id", "title", "year", "categories")}
    user_table = tables.users(users["user_id"], extra_users)
    item_table = tables.items(items["item_id"], items["title"], items["year"],
                              [[c] for c in items["categories"]], extra_items)
    data = tables.dataset(f"synthetic:{name}", inter, user_table, item_table,
                          None if rating is None else (1.0, 5.0), [])
    data.report.insert(0, f"synthetic {name}: {MECHANISMS[name]}")
    return data


def _item_bias(rng, n_items: int, scale: float = 0.5) -> np.ndarray:
    return rng.normal(0.0, scale, n_items)


def _result(data: Dataset, truth: dict, with_truth: bool):
    return (data, truth) if with_truth else data


def taste(seed: int = 0, size: Optional[Size] = None, with_truth: bool = False):
    """Taste-driven picks, taste-driven ratings.

    Mechanism: user u picks items with probability softmax_j(2.0 s(u, j) + b_j)
    (b_j ~ N(0, 0.5): a mild item bias) without replacement, and rates each
    pick round(3.5 + s(u, j) - mean s + N(0, 0.6)) clipped to 1-5. What a user picked and
    how they rated it say the same thing, so retrieval and rating models learn
    from both.
    """
    size = size or size_of("taste")
    world = _world(size, seed)
    rng, s = world["rng"], world["taste"]
    bias = _item_bias(rng, size.items)
    user, item = _pick(rng, lambda b: TASTE_STRENGTH * s[b] + bias, _activity(rng, size))
    data = _dataset("taste", world, user, item, _ratings(rng, s[user, item]))
    return _result(data, {"taste": s, "bias": bias}, with_truth)


def popularity(seed: int = 0, size: Optional[Size] = None, with_truth: bool = False):
    """Popularity and promotions decide the picks; taste decides the ratings.

    Mechanism: every item has a popularity rank (a random permutation); user
    u picks item j with probability softmax_j(-log(rank_j + 1) + 1.5 promoted_j),
    the same for every user (Zipf(1) popularity; 3% of the items are
    promoted), so what a user picks carries no information about their taste.
    The user rates each pick round(3.5 + s(u, j) - mean s + N(0, 0.6)) clipped to 1-5: a
    rating model must learn from the ratings themselves (which items a user
    rated high), not from which items they picked.
    """
    size = size or size_of("popularity")
    world = _world(size, seed)
    rng, s = world["rng"], world["taste"]
    rank = rng.permutation(size.items)  # 0 = most popular
    promoted = rng.random(size.items) < 0.03
    row = -np.log(rank + 1.0) + 1.5 * promoted
    user, item = _pick(rng, lambda b: np.broadcast_to(row, (len(b), size.items)),
                       _activity(rng, size))
    data = _dataset("popularity", world, user, item, _ratings(rng, s[user, item]))
    return _result(data, {"taste": s, "rank": rank, "promoted": promoted}, with_truth)


def implicit(seed: int = 0, size: Optional[Size] = None, with_truth: bool = False):
    """Implicit-only data: the taste log's picks, no ratings.

    Mechanism: the same world, seed and picks as :func:`taste` (softmax of
    2.0 s(u, j) + b_j), every rating NaN and no declared rating range, so
    rating models (mf, deepfm) cannot train and protocol R does not apply.
    """
    data, truth = taste(seed, size or size_of("implicit"), with_truth=True)
    inter = data.interactions.assign(rating=np.nan)
    out = Dataset("synthetic:implicit", inter, data.users, data.items, rating_range=None,
                  report=[f"synthetic implicit: {MECHANISMS['implicit']}"])
    return _result(out, truth, with_truth)


def longtail(seed: int = 0, size: Optional[Size] = None, with_truth: bool = False):
    """A long-tail catalogue: 20,000 items, Zipf popularity.

    Mechanism: every item has a popularity rank (a random permutation); user
    u picks item j with probability softmax_j(-1.1 log(rank_j + 1) + 2.0 s(u, j))
    without replacement (Zipf(1.1) popularity tilted by taste), and rates it by
    taste (round(3.5 + s - mean s + N(0, 0.6))). Most of the catalogue is rarely or never
    seen in training: the head dominates the picks, and the tail is where
    taste has to be learnt from few interactions.
    """
    size = size or size_of("longtail")
    world = _world(size, seed)
    rng, s = world["rng"], world["taste"]
    rank = rng.permutation(size.items)
    head = -1.1 * np.log(rank + 1.0)
    user, item = _pick(rng, lambda b: head + TASTE_STRENGTH * s[b], _activity(rng, size))
    data = _dataset("longtail", world, user, item, _ratings(rng, s[user, item]))
    return _result(data, {"taste": s, "rank": rank}, with_truth)


AGE_GROUPS = (18, 30, 50)  # lower bounds: young 18-29, middle 30-49, senior 50+
REGIONS = 6


def age_group(age) -> np.ndarray:
    """0, 1 or 2: the age group of each age (AGE_GROUPS)."""
    return np.searchsorted(np.asarray(AGE_GROUPS), np.asarray(age), side="right") - 1


def attributes(seed: int = 0, size: Optional[Size] = None, with_truth: bool = False):
    """User and item attributes that drive the preference.

    Mechanism: users have an ``age`` (18-74; groups 18-29, 30-49, 50+), a
    region (the first two characters of ``zip``, one of 6) and a ``gender``
    that does not matter; items a category (12) and a ``price`` (lognormal;
    ``year`` does not matter). The preference of user u for item j is

        p(u, j) = A[age group, category] + R[region, category]
                  + P[age group] z(log price) + 0.3 s(u, j),

    with A, R ~ N(0, 1) tables, P = (-1, 0, +1) (the young prefer cheap items,
    the seniors expensive ones) and s the small individual taste; p is
    standardised. Picks: softmax_j(2.0 p(u, j) + b_j), b_j ~ N(0, 0.5); ratings:
    round(3.5 + p - mean p + N(0, 0.6)) clipped to 1-5. Two users of the same age group
    and region share most of their preference, so the attributes (content
    features) carry signal beyond the ids.
    """
    size = size or size_of("attributes")
    world = _world(size, seed)
    rng = world["rng"]
    users, items = world["users"].copy(), world["items"].copy()
    age = rng.integers(18, 75, size.users)
    region = rng.integers(0, REGIONS, size.users)
    users["age"] = age
    users["zip"] = [f"{r:02d}{z:03d}" for r, z in zip(region, rng.integers(0, 1000, size.users))]
    log_price = rng.normal(3.0, 0.8, size.items)
    items["price"] = np.round(np.exp(log_price), 2)
    group, category = age_group(age), world["category"]
    a_table = rng.normal(size=(len(AGE_GROUPS), CATEGORIES))
    r_table = rng.normal(size=(REGIONS, CATEGORIES))
    p_slope = np.array([-1.0, 0.0, 1.0])
    z_price = (log_price - log_price.mean()) / log_price.std()
    raw = (a_table[group][:, category] + r_table[region][:, category]
           + p_slope[group][:, None] * z_price[None, :] + 0.3 * world["taste"])
    pref = (raw - raw.mean()) / raw.std()
    bias = _item_bias(rng, size.items)
    user, item = _pick(rng, lambda b: TASTE_STRENGTH * pref[b] + bias, _activity(rng, size))
    data = _dataset("attributes", world, user, item, _ratings(rng, pref[user, item]),
                    users=users, items=items)
    truth = {"preference": pref, "age_table": a_table, "region_table": r_table,
             "price_slope": p_slope, "group": group, "region": region, "category": category}
    return _result(data, truth, with_truth)


GENERATORS = {"taste": taste, "popularity": popularity, "implicit": implicit,
              "longtail": longtail, "attributes": attributes}
