"""The train state and step: both networks, their optimisers, the counters, the checkpoint.

Plan of one step (paper sec. 3 and the reference implementation):
  1. G translates the input; D scores (input, target) and (input, G(input)) patch-wise.
  2. G's loss: fool D on its output + lambda * L1 to the target (terms switchable).
  3. D's loss: real patches -> 1, generated patches -> 0, halved.
  4. One Adam(2e-4, beta1 0.5) update each, from two independent gradient tapes.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.config import Config
from pix2pix_tf.losses import discriminator_loss, generator_loss
from pix2pix_tf.models import build_models
from pix2pix_tf.precision import resolve as resolve_precision
from pix2pix_tf.train.optimizer import make_optimizer
from pix2pix_tf.train.schedule import Schedule


class Pix2Pix:
    """The generator, the discriminator, their optimisers and the train step.

    Args:
        config: the run configuration; a precision of "auto" is resolved for this
            machine (`self.config` holds the choice).
        schedule: resolved run length (for the learning-rate decay).
        run_eagerly: run the steps without tf.function, for debugging.
    """

    def __init__(self, config: Config, schedule: Schedule, run_eagerly: bool = False):
        precision, self.precision_reason = resolve_precision(config.train.precision)
        # The concrete choice is what config.json records, so a resumed run keeps it.
        self.config = config = config.replace(train={"precision": precision})
        keras.utils.set_random_seed(config.train.seed)
        self.generator, self.discriminator = build_models(config, seed=config.train.seed)
        self.g_optimizer = make_optimizer(config, schedule, "g_optimizer")
        self.d_optimizer = make_optimizer(config, schedule, "d_optimizer")
        # Creating the slots now avoids a retrace at the first step and lets a
        # checkpoint restore them immediately.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # Dropout's random state lives in Keras seed generators, which a checkpoint
        # of the model alone does not hold; saving it makes a resumed run identical.
        seeds = [v.value for v in self.generator.non_trainable_variables if "seed_generator" in v.path]
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            epoch=self.epoch,
            dropout_seeds=seeds,
        )
        if run_eagerly:
            self.train_step, self.train_steps = self._train_step, self._train_steps
        else:
            self.train_step = tf.function(self._train_step, reduce_retracing=True)
            self.train_steps = tf.function(self._train_steps)

    def discriminate(self, source, image, training: bool):
        """D's logits for `image` given `source` (ignored by an unconditional D)."""
        inputs = [source, image] if self.config.model.conditional else image
        return self.discriminator(inputs, training=training)

    def _train_step(self, source, target) -> dict[str, tf.Tensor]:
        t = self.config.train
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            generated = self.generator(source, training=True)
            real_logits = self.discriminate(source, target, training=True)
            fake_logits = self.discriminate(source, generated, training=True)
            g_losses = generator_loss(fake_logits, generated, target, t.lambda_l1, t.use_gan, t.use_l1, t.gan_loss)
            d_losses = discriminator_loss(real_logits, fake_logits, t.gan_loss)
            g_objective, d_objective = g_losses["g_total"], d_losses["d_total"]
            if t.precision == "mixed_float16":
                g_objective = self.g_optimizer.scale_loss(g_objective)
                d_objective = self.d_optimizer.scale_loss(d_objective)
        g_grads = g_tape.gradient(g_objective, self.generator.trainable_variables)
        self.g_optimizer.apply(g_grads, self.generator.trainable_variables)
        if t.use_gan:  # the L1-only baseline has no adversary to train
            d_grads = d_tape.gradient(d_objective, self.discriminator.trainable_variables)
            self.d_optimizer.apply(d_grads, self.discriminator.trainable_variables)
        return {**g_losses, **d_losses, "learning_rate": self.g_optimizer.learning_rate}

    def _train_steps(self, iterator, n) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """`n` steps on batches from `iterator` (an endless stream) in one call.

        One call per step costs a Python round trip and a host sync each; at small
        sizes that is a sizeable share of the step, so the loop runs several per
        call, as Keras' steps_per_execution does.

        Returns:
            (the last step's losses, whether every step's losses were finite).
        """
        losses = self._train_step(*next(iterator))
        self._count(losses)
        finite = _all_finite(losses)
        for _ in tf.range(n - 1):
            losses = self._train_step(*next(iterator))
            self._count(losses)
            finite = tf.logical_and(finite, _all_finite(losses))
        return losses, finite

    def _count(self, losses):
        # Ordered after the step's own ops, so a failing step never advances the counter.
        with tf.control_dependencies(list(losses.values())):
            self.step.assign_add(1)

    def all_finite(self) -> bool:
        """True if no weight of G or D is NaN or Inf (checked before every save)."""
        variables = self.generator.trainable_variables + self.discriminator.trainable_variables
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))


def _all_finite(losses: dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in losses.values()])
