"""The train state and step: both networks, their optimisers, the counters, the checkpoint.

Plan of one step (paper sec. 3 and the reference implementation):
  1. G translates the input; D scores (input, target) and (input, G(input)) patch-wise.
  2. G's loss: fool D on its output + lambda * L1 to the target (terms switchable).
  3. D's loss: real patches -> 1, generated patches -> 0, halved.
  4. One Adam(2e-4, beta1 0.5) update each, from two independent gradient tapes.

Under a tf.distribute strategy each replica runs 1-3 on its share of the batch,
with its losses divided by the number of replicas; the optimiser sums the
gradients over replicas, which gives the gradient of the whole batch's mean loss.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.config import Config
from pix2pix_tf.losses import LOSS_NAMES, discriminator_loss, generator_loss
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
        strategy: the tf.distribute strategy whose replicas share each batch
            (see `distribute.make_strategy`); the default strategy if None.
    """

    def __init__(
        self,
        config: Config,
        schedule: Schedule,
        run_eagerly: bool = False,
        strategy: tf.distribute.Strategy | None = None,
    ):
        self.strategy = strategy = strategy or tf.distribute.get_strategy()
        precision, self.precision_reason = resolve_precision(config.train.precision)
        # The concrete choice is what config.json records, so a resumed run keeps it.
        self.config = config = config.replace(train={"precision": precision})
        keras.utils.set_random_seed(config.train.seed)
        with strategy.scope():
            self._build(config, schedule)
        if run_eagerly:
            self.train_step, self.train_steps = self._train_step, self._train_steps
        else:
            self.train_step = tf.function(self._train_step, reduce_retracing=True)
            self.train_steps = tf.function(self._train_steps)

    def _build(self, config: Config, schedule: Schedule):
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

    def discriminate(self, source, image, training: bool):
        """D's logits for `image` given `source` (ignored by an unconditional D)."""
        inputs = [source, image] if self.config.model.conditional else image
        return self.discriminator(inputs, training=training)

    # Plain Python control flow only: autograph's conversion of the step (and of the
    # Keras code it calls) took about half of the first call's tracing time.
    @tf.autograph.experimental.do_not_convert
    def _train_step(self, source, target) -> dict[str, tf.Tensor]:
        """One step on a batch: plain tensors, or per-replica values from `distributed_stream`.

        Returns:
            The batch's mean losses and the learning rate, as float32 scalars.
        """
        # Read before the update, which advances the schedule: the rate this step uses.
        learning_rate = tf.identity(self.g_optimizer.learning_rate)
        losses = self.strategy.run(self.replica_step, args=(source, target))
        # Every replica has an equal share, so the mean of their means is the batch's
        # mean; stacked, the losses cross the replicas in one reduction.
        mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)
        return {**dict(zip(LOSS_NAMES, tf.unstack(mean))), "learning_rate": learning_rate}

    def replica_step(self, source, target) -> tf.Tensor:
        """The paper's step on this replica's share of a batch: two tapes, two losses, two updates.

        `train_step` runs this on every replica and averages the losses; called alone (one
        device) it is one whole step. Returns the losses stacked in `LOSS_NAMES` order.
        """
        t = self.config.train
        # The optimisers sum the replicas' gradients: dividing each replica's mean
        # by their number makes the sum the gradient of the global batch's mean.
        share = 1.0 / self.strategy.num_replicas_in_sync
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            generated = self.generator(source, training=True)
            real_logits = self.discriminate(source, target, training=True)
            fake_logits = self.discriminate(source, generated, training=True)
            g_losses = generator_loss(fake_logits, generated, target, t.lambda_l1, t.use_gan, t.use_l1, t.gan_loss)
            d_losses = discriminator_loss(real_logits, fake_logits, t.gan_loss)
            g_objective, d_objective = g_losses["g_total"] * share, d_losses["d_total"] * share
            if t.precision == "mixed_float16":
                g_objective = self.g_optimizer.scale_loss(g_objective)
                d_objective = self.d_optimizer.scale_loss(d_objective)
        g_grads = g_tape.gradient(g_objective, self.generator.trainable_variables)
        self.g_optimizer.apply(self._scaled_gradients(g_grads), self.generator.trainable_variables)
        if t.use_gan:  # the L1-only baseline has no adversary to train
            d_grads = d_tape.gradient(d_objective, self.discriminator.trainable_variables)
            self.d_optimizer.apply(self._scaled_gradients(d_grads), self.discriminator.trainable_variables)
        losses = {**g_losses, **d_losses}
        return tf.stack([tf.cast(losses[name], tf.float32) for name in LOSS_NAMES])

    def _scaled_gradients(self, grads):
        """Loss-scaled gradients that every replica judges finite or not alike.

        Keras' LossScaleOptimizer skips a step, and lowers its scale, when the
        gradients it is given are not finite, judging from this replica's share
        before the all-reduce: with several replicas, one could skip while another
        applies Inf, or (across workers) wait in an all-reduce the other never joins.
        One replica's overflow is made every replica's.
        """
        if self.config.train.precision != "mixed_float16" or self.strategy.num_replicas_in_sync == 1:
            return grads
        return agree_on_overflow(grads)

    def _train_steps(self, iterator, n) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """`n` steps on batches from `iterator` (an endless stream) in one call.

        One call per step costs a Python round trip and a host sync each; at small
        sizes that is a sizeable share of the step, so the loop runs several per
        call, as Keras' steps_per_execution does.

        Returns:
            (the last step's losses, whether every step's losses were finite).
        """
        # The loop's variables start as zeros of the step's structure: peeling the
        # first step out of the loop instead would trace (and optimise) the step twice.
        losses = {name: tf.zeros([], tf.float32) for name in (*LOSS_NAMES, "learning_rate")}
        finite = tf.constant(True)
        for _ in tf.range(n):
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


def agree_on_overflow(grads: list) -> list:
    """In a replica context: `grads`, or all NaN on every replica if any replica has a NaN or Inf."""
    finite = _all_finite([g for g in grads if g is not None])
    overflows = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32)
    )
    factor = tf.where(overflows > 0, float("nan"), 1.0)  # x * 1.0 is x exactly
    return [None if g is None else g * tf.cast(factor, g.dtype) for g in grads]


def _all_finite(tensors) -> tf.Tensor:
    """True if no value of `tensors` (a list, or a dict's values) is NaN or Inf."""
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in values])
