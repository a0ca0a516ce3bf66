import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.train import FusedAdam, LinearDecay


def _run(optimizer, init, grads, scale=1.0):
    variables = [keras.Variable(w) for w in init]
    optimizer.build(variables)
    step = tf.function(lambda g: optimizer.apply([x * scale for x in g], variables))
    for g in grads:
        step(g)
    return variables, optimizer


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype("float32") for s in [(4, 4, 16, 32), (32,), (3, 3)]]
    grads = [[tf.constant(rng.standard_normal(w.shape).astype("float32")) for w in init] for _ in range(6)]
    return init, grads


def test_fused_adam_follows_keras_adam(problem):
    init, grads = problem

    def schedule():  # decaying over the last 4 of 6 steps, so the step count the schedule sees matters
        return LinearDecay(2e-3, total_steps=6, decay_steps=4)

    fused, _ = _run(FusedAdam(schedule(), beta_1=0.5), init, grads)
    plain, _ = _run(keras.optimizers.Adam(schedule(), beta_1=0.5), init, grads)
    for a, b, w in zip(fused, plain, init, strict=True):
        assert not np.allclose(a.numpy(), w)  # it moved
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_fused_adam_under_loss_scaling_follows_keras_adam(problem):
    init, grads = problem
    fused, _ = _run(keras.optimizers.LossScaleOptimizer(FusedAdam(1e-3, beta_1=0.5)), init, grads, scale=2.0**15)
    plain, _ = _run(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3, beta_1=0.5)), init, grads, 2.0**15)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_a_keras_adam_checkpoint_restores_into_fused_adam(problem, tmp_path):
    init, grads = problem
    variables, adam = _run(keras.optimizers.Adam(1e-3, beta_1=0.5), init, grads[:3])
    path = tf.train.Checkpoint(optimizer=adam, variables=variables).save(str(tmp_path / "ckpt"))
    fresh = [keras.Variable(np.zeros_like(w)) for w in init]
    fused = FusedAdam(1e-3, beta_1=0.5)
    fused.build(fresh)
    tf.train.Checkpoint(optimizer=fused, variables=fresh).restore(path).assert_consumed()
    assert int(fused.iterations) == 3
    for a, b in zip(fused.variables, adam.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
