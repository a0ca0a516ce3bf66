"""Adam with TensorFlow's fused kernel, and the optimiser each network trains with.

Keras' Adam updates a variable with about ten small ops (two moments, a square
root, a division...), each reading and writing the whole tensor. At batch 1 the
step is partly memory-bound, and for the U-Net's 54 M parameters those passes cost
more than the transposed convolutions. TensorFlow's `ResourceApplyAdam` does the
same update in one pass per variable. Its arithmetic is Keras': epsilon is added
to sqrt(v) after the bias correction has been folded into the learning rate,
lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), var -= lr_t * m / (sqrt(v) + eps).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.config import Config
from pix2pix_tf.train.schedule import LinearDecay, Schedule


class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is one `ResourceApplyAdam` kernel.

    The slots, the step counter, the checkpoint layout and the results are Keras
    Adam's (up to float rounding); only the update kernel differs.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def _handle(variable):
    # Keras hands update_step the tf.Variable itself (its distribution path) or a
    # Keras variable wrapping one.
    return variable.handle if isinstance(variable, tf.Variable) else variable.value.handle


def make_optimizer(config: Config, schedule: Schedule, name: str) -> keras.optimizers.Optimizer:
    """Adam(lr, beta_1) on the linear-decay schedule; loss-scaled for mixed_float16."""
    t = config.train
    lr = LinearDecay(t.learning_rate, schedule.total_steps, schedule.decay_steps)
    optimizer = FusedAdam(lr, beta_1=t.beta_1, name=name)
    if t.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=name)
    return optimizer
