"""Custom Keras layers of AFETLER: adaptive fusion and the multi-channel attention unit."""

from afetler_tf.layers.fusion import AdaptiveFusion
from afetler_tf.layers.mcau import MCAU, channel_mask, masked_softmax

__all__ = ["AdaptiveFusion", "MCAU", "channel_mask", "masked_softmax"]
