"""The ATL auxiliary losses of AFETLER (docs/design.md §3), as pure functions on tensors.

- :func:`mimic_loss`: DAT's adaptive-mimic loss, ``mean ‖a − sg(p)‖²``.
- :func:`attention_alignment_loss`: ``KL(π ‖ α)`` per MCAU channel, with π
  from the Jaccard overlap of history and target categories.
- :func:`category_alignment_loss`: DAT's category alignment,
  ``Σ_{i≠major} ‖Cov(S^major) − Cov(S^i)‖²_F``.

All work inside ``tf.function`` with dynamic batch and category sets; the model
weighs and sums them (``compute_loss``). They know nothing of models.
"""

from __future__ import annotations

import tensorflow as tf

from afetler_tf.layers.mcau import channel_mask, masked_softmax


def mimic_loss(augmented, tower_output, weights=None) -> tf.Tensor:
    """Adaptive-mimic loss: mean over pairs of ``‖a − stop_gradient(p)‖²``.

    Call it on positive pairs only: ``L_u = mimic_loss(a_u, p_v)`` and
    ``L_v = mimic_loss(a_v, p_u)``. The stop-gradient means the loss trains the
    augmented vectors only, never the tower that produced ``p``.

    Args:
        augmented: Float ``(batch, d)``, the augmented vectors ``a``.
        tower_output: Float ``(batch, d)``, the other tower's output ``p``.
        weights: Optional ``(batch,)`` per-pair weights (e.g. 1 for positive
            pairs, 0 otherwise); the mean is then ``Σ w ‖·‖² / Σ w`` (0 when
            ``Σ w = 0``).

    Returns:
        A scalar.
    """
    augmented = tf.convert_to_tensor(augmented)
    target = tf.stop_gradient(tf.cast(tower_output, augmented.dtype))
    squared = tf.reduce_sum(tf.square(augmented - target), axis=-1)  # (batch,)
    if weights is None:
        return tf.reduce_mean(squared)
    weights = tf.cast(weights, squared.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(weights * squared), tf.reduce_sum(weights))


def jaccard(a_multi_hot, b_multi_hot) -> tf.Tensor:
    """Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of multi-hot category sets.

    Reduces the last axis; leading axes broadcast. Two empty sets give 0.

    Args:
        a_multi_hot: ``(..., K)`` 0/1 (or bool) tensor.
        b_multi_hot: ``(..., K)`` 0/1 tensor, broadcastable to ``a_multi_hot``.

    Returns:
        Float tensor of the broadcast leading shape ``(...)``.
    """
    a = tf.cast(tf.cast(a_multi_hot, tf.bool), tf.float32)
    b = tf.cast(tf.cast(b_multi_hot, tf.bool), tf.float32)
    intersection = tf.reduce_sum(a * b, axis=-1)
    union = tf.reduce_sum(tf.maximum(a, b), axis=-1)
    return tf.math.divide_no_nan(intersection, union)


def attention_alignment_loss(
    alpha,
    history_categories,
    target_categories,
    mask,
    channel_ids=None,
    tau: float = 1.0,
    epsilon: float = 1e-8,
) -> tf.Tensor:
    """``KL(π ‖ α)`` per channel, averaged over the non-empty channels.

    ``π_cj ∝ exp(jaccard(h_j, target) / τ)`` over channel c's unmasked
    positions: attention should go to history related to the target. The KL of
    channel c is ``Σ_j π_cj (log(π_cj + ε) − log(α_cj + ε))`` over those
    positions; the loss is the mean over all non-empty (example, channel)
    pairs of the batch. Empty channels contribute nothing; a batch without any
    history gives 0. π is a target, so no gradient flows into it.

    Args:
        alpha: Float ``(batch, C, L)``, MCAU item weights.
        history_categories: ``(batch, L, K)`` multi-hot categories of the
            history items.
        target_categories: ``(batch, K)`` multi-hot categories of the target.
        mask: Bool ``(batch, L)`` (real positions; then ``channel_ids`` is
            required), or the bool ``(batch, C, L)`` channel mask itself.
        channel_ids: Int ``(batch, L)`` channel of each position, as given to
            MCAU; ``None`` when ``mask`` is already ``(batch, C, L)``.
        tau: Temperature τ > 0 of π.
        epsilon: Added inside the logs.

    Returns:
        A scalar.

    Raises:
        ValueError: If ``tau`` is not positive, or ``channel_ids`` is missing
            for a ``(batch, L)`` mask.
    """
    if not tau > 0:
        raise ValueError(f"`tau` must be positive, got {tau!r}.")
    alpha = tf.convert_to_tensor(alpha)  # (B, C, L)
    mask = tf.convert_to_tensor(mask)
    if channel_ids is not None:
        mask = channel_mask(channel_ids, mask, alpha.shape[1] or tf.shape(alpha)[1])  # (B, C, L)
    elif mask.shape.rank != 3:
        raise ValueError(f"A (batch, L) mask needs `channel_ids`; got mask of shape {mask.shape}.")
    mask = tf.cast(mask, tf.bool)
    overlap = jaccard(history_categories, tf.convert_to_tensor(target_categories)[:, tf.newaxis, :])  # (B, L)
    overlap = tf.cast(overlap, alpha.dtype)
    pi = tf.stop_gradient(masked_softmax(overlap[:, tf.newaxis, :] / tau, mask))  # (B, C, L)
    mask_f = tf.cast(mask, alpha.dtype)
    terms = pi * (tf.math.log(pi + epsilon) - tf.math.log(alpha + epsilon)) * mask_f  # (B, C, L)
    kl = tf.reduce_sum(terms, axis=-1)  # (B, C)
    non_empty = tf.cast(tf.reduce_any(mask, axis=-1), alpha.dtype)  # (B, C)
    return tf.math.divide_no_nan(tf.reduce_sum(kl * non_empty), tf.reduce_sum(non_empty))


def category_alignment_loss(item_vectors, primary_category_ids) -> tf.Tensor:
    """DAT category alignment: ``Σ_{i≠major} ‖Cov(S^major) − Cov(S^i)‖²_F``.

    ``S^i`` are the rows of ``item_vectors`` whose primary category is i in
    this batch; ``major`` is the most frequent category (ties go to the one
    that appears first in the batch). Covariances are the **unbiased** sample
    covariance (divide by ``n − 1``, as ``np.cov``). Categories with fewer than
    2 items in the batch are skipped; if the major one has fewer than 2, the
    loss is 0. Category ids are arbitrary ints (need not be contiguous), found
    per batch with ``tf.unique``, so it runs under ``tf.function``.

    Args:
        item_vectors: Float ``(batch, d)``, the item tower outputs ``p_v``.
        primary_category_ids: Int ``(batch,)`` primary category of each item.

    Returns:
        A scalar.
    """
    vectors = tf.convert_to_tensor(item_vectors)  # (B, d)
    categories, segment = tf.unique(tf.reshape(primary_category_ids, [-1]))  # segment: (B,)
    # One extra empty category n keeps argmax defined on an empty batch.
    num = tf.size(categories) + 1  # n + 1, dynamic
    one_hot = tf.one_hot(segment, num, dtype=vectors.dtype)  # (B, n + 1)
    counts = tf.reduce_sum(one_hot, axis=0)  # (n + 1,)
    means = tf.math.divide_no_nan(tf.matmul(one_hot, vectors, transpose_a=True), counts[:, tf.newaxis])  # (n+1, d)
    centered = vectors - tf.gather(means, segment)  # (B, d)
    # Cov_i = Σ_{b in i} c_b c_bᵀ / (n_i − 1), all categories in one matmul:
    # (one-hot ⊗ c)ᵀ c, i.e. einsum("bn,bi,bj->nij").
    d = tf.shape(vectors)[1]
    by_category = tf.reshape(one_hot[:, :, tf.newaxis] * centered[:, tf.newaxis, :], [-1, num * d])
    scatter = tf.reshape(tf.matmul(by_category, centered, transpose_a=True), [num, d, d])  # (n+1, d, d)
    covariances = scatter / tf.maximum(counts - 1.0, 1.0)[:, tf.newaxis, tf.newaxis]  # (n+1, d, d)
    major = tf.argmax(counts, output_type=tf.int32)  # first maximum = first to appear
    distances = tf.reduce_sum(tf.square(covariances - covariances[major]), axis=[1, 2])  # (n+1,)
    used = tf.logical_and(counts >= 2.0, tf.range(num) != major)  # (n,)
    loss = tf.reduce_sum(tf.where(used, distances, tf.zeros_like(distances)))
    return tf.where(counts[major] >= 2.0, loss, tf.zeros_like(loss))
