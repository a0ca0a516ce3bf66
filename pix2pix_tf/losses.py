"""The pix2pix objective (paper eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G).

Pure tensor functions; every loss comes back with its components for logging.
Everything is computed in float32, whatever the models' compute dtype.
"""

from __future__ import annotations

import tensorflow as tf

from pix2pix_tf.errors import Pix2PixError

# The components generator_loss and discriminator_loss return, in the order the trainer logs them.
LOSS_NAMES = ("g_total", "g_gan", "g_l1", "d_total", "d_real", "d_fake")


def gan_loss(logits: tf.Tensor, is_real: bool, kind: str = "vanilla") -> tf.Tensor:
    """Mean GAN loss of a logit map against an all-real or all-fake label.

    Args:
        logits: discriminator output, any shape.
        is_real: the label every patch is compared with.
        kind: "vanilla" (binary cross-entropy on logits, the paper) or "lsgan"
            (least squares on the raw outputs, Mao et al. 2017).

    Returns:
        A float32 scalar.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.ones_like(logits) if is_real else tf.zeros_like(logits)
    if kind == "vanilla":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    if kind == "lsgan":
        return tf.reduce_mean(tf.square(logits - labels))
    raise Pix2PixError(f"gan loss must be vanilla or lsgan; got {kind!r}")


def l1_loss(generated: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean absolute error, in float32."""
    return tf.reduce_mean(tf.abs(tf.cast(target, tf.float32) - tf.cast(generated, tf.float32)))


def generator_loss(
    fake_logits: tf.Tensor,
    generated: tf.Tensor,
    target: tf.Tensor,
    lambda_l1: float = 100.0,
    use_gan: bool = True,
    use_l1: bool = True,
    kind: str = "vanilla",
) -> dict[str, tf.Tensor]:
    """G's loss: GAN term (fool D on the fakes) + lambda * L1 to the target.

    Switching terms gives the paper's Table 1 rows: L1 (use_gan=False), GAN / cGAN
    (use_l1=False, with an unconditional / conditional D), L1+GAN, L1+cGAN.

    Returns:
        {"g_total", "g_gan", "g_l1"}: float32 scalars; a switched-off term is
        still reported (for monitoring) but does not enter g_total.
    """
    g_gan = gan_loss(fake_logits, True, kind)
    g_l1 = l1_loss(generated, target)
    total = tf.zeros((), tf.float32)
    if use_gan:
        total += g_gan
    if use_l1:
        total += lambda_l1 * g_l1
    return {"g_total": total, "g_gan": g_gan, "g_l1": g_l1}


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor, kind: str = "vanilla") -> dict[str, tf.Tensor]:
    """D's loss, halved as in the paper to slow D relative to G.

    Returns:
        {"d_total": (real + fake) / 2, "d_real", "d_fake"}: float32 scalars.
    """
    d_real = gan_loss(real_logits, True, kind)
    d_fake = gan_loss(fake_logits, False, kind)
    return {"d_total": 0.5 * (d_real + d_fake), "d_real": d_real, "d_fake": d_fake}
