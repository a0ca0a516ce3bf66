import math

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.losses import discriminator_loss, gan_loss, generator_loss, l1_loss


def _softplus(x):
    return math.log1p(math.exp(x))


LOGITS = tf.constant([[2.0, -1.0], [0.0, 3.0]])


def test_vanilla_gan_loss_closed_form():
    # BCE(real) = mean softplus(-z); BCE(fake) = mean softplus(z)
    z = [2.0, -1.0, 0.0, 3.0]
    assert float(gan_loss(LOGITS, True)) == pytest.approx(np.mean([_softplus(-v) for v in z]), rel=1e-6)
    assert float(gan_loss(LOGITS, False)) == pytest.approx(np.mean([_softplus(v) for v in z]), rel=1e-6)


def test_lsgan_closed_form():
    assert float(gan_loss(LOGITS, True, "lsgan")) == pytest.approx((1 + 4 + 1 + 4) / 4)
    assert float(gan_loss(LOGITS, False, "lsgan")) == pytest.approx((4 + 1 + 0 + 9) / 4)


def test_l1():
    assert float(l1_loss(tf.constant([0.5, -1.0]), tf.constant([0.0, 1.0]))) == pytest.approx(1.25)


def test_generator_loss_terms_are_switchable():
    fake = tf.constant([[0.0]])
    gen, tgt = tf.constant([0.2]), tf.constant([0.0])
    gan, l1 = math.log(2), 0.2
    both = generator_loss(fake, gen, tgt, lambda_l1=100)
    assert float(both["g_total"]) == pytest.approx(gan + 100 * l1, rel=1e-5)
    assert float(both["g_gan"]) == pytest.approx(gan, rel=1e-6) and float(both["g_l1"]) == pytest.approx(l1)
    assert float(generator_loss(fake, gen, tgt, use_gan=False)["g_total"]) == pytest.approx(100 * l1, rel=1e-5)
    only_gan = generator_loss(fake, gen, tgt, use_l1=False)
    assert float(only_gan["g_total"]) == pytest.approx(gan, rel=1e-6)
    assert float(only_gan["g_l1"]) == pytest.approx(l1)  # still reported for monitoring


def test_discriminator_loss_is_halved():
    real, fake = tf.constant([[1.0]]), tf.constant([[-2.0]])
    out = discriminator_loss(real, fake)
    assert float(out["d_real"]) == pytest.approx(_softplus(-1.0), rel=1e-6)
    assert float(out["d_fake"]) == pytest.approx(_softplus(-2.0), rel=1e-6)
    assert float(out["d_total"]) == pytest.approx(0.5 * (_softplus(-1.0) + _softplus(-2.0)), rel=1e-6)


def test_losses_are_float32_for_bfloat16_inputs():
    out = generator_loss(tf.cast(LOGITS, tf.bfloat16), tf.zeros(3, tf.bfloat16), tf.ones(3))
    assert all(v.dtype == tf.float32 for v in out.values())
