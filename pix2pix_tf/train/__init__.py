"""Training: the paper's two-tape step, run by a loop that checkpoints, logs and resumes.

One module per concern: `schedule` (run length, learning rate), `optimizer` (Adam on
TensorFlow's fused kernel), `state` (networks, optimisers, counters, checkpoint and
the step), `distribute` (the tf.distribute strategy, who is chief, each replica's
share of the data), `startup` (strategy, settings agreement, restore), `jobs` (the
periodic log, sample and checkpoint, each with one `due(step)` rule), `samples` and
`progress` (what a run shows), `pacing` (how long each call runs, how fast the steps
ran), and `loop` (`train`, over the parts above; the work dir's layout and which
config a rerun uses are `artifacts.workdir`'s).
"""

from pix2pix_tf.train.loop import NonFiniteLossError, TrainResult, train
from pix2pix_tf.train.optimizer import FusedAdam, make_optimizer
from pix2pix_tf.train.schedule import DEFAULT_EPOCHS, LinearDecay, Schedule, resolve_schedule
from pix2pix_tf.train.state import Pix2Pix

__all__ = [
    "DEFAULT_EPOCHS",
    "FusedAdam",
    "LinearDecay",
    "NonFiniteLossError",
    "Pix2Pix",
    "Schedule",
    "TrainResult",
    "make_optimizer",
    "resolve_schedule",
    "train",
]
