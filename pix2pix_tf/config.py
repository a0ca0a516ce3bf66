"""Typed, frozen configuration for data, models and training, plus paper presets.

The resolved configuration is written as JSON next to every checkpoint and export,
so a trained model reloads without repeating a single flag.
"""

from __future__ import annotations

import dataclasses
import math

from pix2pix_tf.errors import Pix2PixError

DIRECTIONS = ("AtoB", "BtoA")
CHANNELS = (1, 3)  # grayscale or RGB
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width_and_crop", "none")
NORMS = ("batch", "syncbatch", "instance", "none")  # syncbatch: batch statistics over all replicas
GENERATORS = ("unet", "encoder-decoder")
RECEPTIVE_FIELDS = (1, 16, 34, 70, 142, 286)
GAN_LOSSES = ("vanilla", "lsgan")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")  # auto: see pix2pix_tf.precision
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")  # see pix2pix_tf.train.distribute
TFLITE_VARIANTS = ("float32", "float16", "int8", "dynamic")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise Pix2PixError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


SEED_LIMIT = 2**32  # TensorFlow's and NumPy's seeds are unsigned 32-bit


def _check_whole(name: str, value, low: int, high: int | None = None, optional: bool = False) -> None:
    """Refuses a value that is not a whole number in [low, high) (None passes if `optional`)."""
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value >= high):
        bound = f">= {low}" if high is None else f"in [{low}, {high})"
        raise Pix2PixError(f"{name} must be a whole number {bound}; got {value!r}")


def _check_range(name: str, value, low: float, high: float = math.inf, *, low_open=False, high_open=False) -> None:
    """Refuses a non-number, NaN, or a value outside [low, high] (open ends where asked)."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or high == math.inf else ']'}"
        raise Pix2PixError(f"{name} must be a number in {interval}; got {value!r}")


def option(
    default,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple = (),
    unset: str | None = None,
    group: str | None = None,
    instead_of: str | None = None,
):
    """Declares a config field together with its command-line flag (built by `pix2pix_tf.cli.options`).

    Args:
        default: the field's default; the flag's help shows it.
        help: what the option does, without its default.
        flag: the flag's name where it is not the field's (`lr` for learning_rate). A boolean
            flag sets the opposite of the default, so an option that is on by default is
            named for turning it off (`no_flip` for flip).
        choices: the values the flag accepts (`__post_init__` checks them too).
        unset: what a default of None means, shown in the help as the default.
        group: the heading the flag is listed under in the help, where not its config section's.
        instead_of: an earlier field this one is the alternative to: the command line takes one
            of the two, and giving one clears the other in a saved config.

    Returns:
        A `dataclasses.field` carrying these in its metadata.
    """
    if default is None and unset is None:
        raise ValueError(f"an option with no default needs `unset` to say what that means ({help!r})")
    metadata = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "unset": unset,
        "group": group,
        "instead_of": instead_of,
    }
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How image files become (input, target) batches."""

    image_size: int = option(256, "side of the square crop fed to the networks, a multiple of 32")
    load_size: int | None = option(
        None, "side the image is resized to before the random crop", unset="image size * 286 / 256, 286 for 256"
    )
    channels: int = option(
        3, "1 (grayscale) or 3 (RGB); images with other channel counts are converted", choices=CHANNELS
    )
    direction: str = option("AtoB", "AtoB translates the left/A image into the right/B image", choices=DIRECTIONS)
    preprocess: str = option(
        "resize_and_crop",
        "how training images are resized and cropped, as in the reference repo",
        choices=PREPROCESS_MODES,
    )
    flip: bool = option(True, "no random mirroring", flag="no_flip")
    batch_size: int = option(
        1, "images per step, the global batch on several replicas (split evenly); the paper uses 1 for most experiments"
    )
    cache: bool = option(False, "keep decoded, resized images in memory after the first pass")
    skip_bad: bool = option(False, "skip unreadable or malformed files instead of failing")

    def __post_init__(self):
        _check_whole("image_size", self.image_size, 32)
        _check_whole("batch_size", self.batch_size, 1)
        _check_whole("load_size", self.load_size, 1, optional=True)
        if self.image_size % 32:
            raise Pix2PixError(f"image_size must be a multiple of 32 and at least 32; got {self.image_size}")
        if self.resize_to < self.image_size:
            raise Pix2PixError(f"load_size ({self.resize_to}) must be >= image_size ({self.image_size})")
        if self.channels not in CHANNELS:
            raise Pix2PixError(f"channels must be 1 or 3; got {self.channels}")
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_choice("preprocess", self.preprocess, PREPROCESS_MODES)
        if self.cache and self.preprocess == "crop":
            raise Pix2PixError("cache needs a fixed load size; preprocess 'crop' keeps each file's own size")

    @property
    def resize_to(self) -> int:
        """The load size in effect: `load_size`, or image_size * 286 / 256 when unset.

        Derived rather than stored, so that changing image_size never leaves a stale load size.
        """
        return self.load_size if self.load_size is not None else self.image_size * 286 // 256


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture (paper appendix defaults)."""

    generator: str = option(
        "unet", "encoder-decoder: the paper's baseline without skip connections", choices=GENERATORS
    )
    ngf: int = option(64, "generator filters in the first layer")
    ndf: int = option(64, "discriminator filters in the first layer")
    norm: str = option(
        "batch", "syncbatch: batch statistics over all replicas, for small per-replica batches", choices=NORMS
    )
    dropout: float = option(0.5, "the generator's dropout rate, its only noise source as in the paper, sec. 3.1")
    d_receptive_field: int = option(
        70, "the discriminator's receptive field in pixels: 1 is a PixelGAN, 286 an ImageGAN", choices=RECEPTIVE_FIELDS
    )
    conditional: bool = option(True, "D does not see the input", flag="unconditional")

    def __post_init__(self):
        _check_choice("generator", self.generator, GENERATORS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("d_receptive_field", self.d_receptive_field, RECEPTIVE_FIELDS)
        _check_whole("ngf", self.ngf, 1)
        _check_whole("ndf", self.ndf, 1)
        _check_range("dropout", self.dropout, 0.0, 1.0, high_open=True)  # rate 1 would zero every feature


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Objective, optimiser, schedule and bookkeeping.

    Length is either `steps` or `epochs` (total, not additional). The learning rate
    stays constant, then decays linearly to zero over the last `decay_steps` /
    `decay_epochs` (the reference repo's n_epochs + n_epochs_decay schedule);
    `None` decays over the second half.
    """

    gan_loss: str = option("vanilla", "vanilla: the paper's cross-entropy; lsgan: least squares", choices=GAN_LOSSES)
    lambda_l1: float = option(100.0, "weight of the L1 term")
    use_gan: bool = option(True, "L1 only", flag="no_gan")
    use_l1: bool = option(True, "GAN term only", flag="no_l1")
    learning_rate: float = option(2e-4, "Adam's learning rate", flag="lr")
    beta_1: float = option(0.5, "Adam's beta_1")
    steps: int | None = option(None, "total steps, not additional", unset="from the epochs")
    # The default length lives in train.schedule (DEFAULT_EPOCHS); a test checks this help against it.
    epochs: int | None = option(None, "total epochs, not additional", unset="200", instead_of="steps")
    decay_steps: int | None = option(None, "linear learning-rate decay over the last N steps", unset="half the run")
    decay_epochs: int | None = option(
        None, "linear learning-rate decay over the last N epochs", unset="half the run", instead_of="decay_steps"
    )
    precision: str = option(
        "auto",
        "auto: bfloat16 on TPUs and CPUs with native bfloat16, float16 on tensor-core GPUs, else float32; "
        "resolved when training starts and saved in config.json",
        choices=PRECISIONS,
    )
    seed: int = option(0, "seed of the initial weights and of the training stream")
    checkpoint_every: int = option(500, "steps between checkpoints", group="bookkeeping")
    keep_checkpoints: int = option(3, "how many of the newest checkpoints to keep", group="bookkeeping")
    sample_every: int = option(200, "steps between sample grids", group="bookkeeping")
    log_every: int = option(10, "steps between progress lines and TensorBoard scalars", group="bookkeeping")
    steps_per_call: int | None = option(
        None, "train steps per tf.function call", unset="sized to ~0.2 s per call on this machine", group="bookkeeping"
    )
    strategy: str = option(
        "auto",
        "auto: the TF_CONFIG cluster if it lists several workers, else all GPUs if there are "
        "several and the batch splits over them, else one device; mirrored: every local GPU; "
        "multi_worker: the cluster in TF_CONFIG (run the same command on every worker, same --workdir); tpu. "
        "--batch-size is the global batch (docs/distributed.md)",
        choices=STRATEGIES,
        group="devices",
    )

    def __post_init__(self):
        _check_choice("gan_loss", self.gan_loss, GAN_LOSSES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        if not (self.use_gan or self.use_l1):
            raise Pix2PixError("at least one of the GAN and L1 terms must be on")
        if self.steps is not None and self.epochs is not None:
            raise Pix2PixError("give either steps or epochs, not both")
        for name in (
            "steps",
            "epochs",
            "checkpoint_every",
            "keep_checkpoints",
            "sample_every",
            "log_every",
            "steps_per_call",
        ):
            _check_whole(name, getattr(self, name), 1, optional=True)
        for name in ("decay_steps", "decay_epochs"):
            _check_whole(name, getattr(self, name), 0, optional=True)
        _check_whole("seed", self.seed, 0, SEED_LIMIT)
        _check_range("lambda_l1", self.lambda_l1, 0.0)
        _check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        _check_range("beta_1", self.beta_1, 0.0, 1.0, high_open=True)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything needed to rebuild, resume or export a run."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = set(d) - set(sections)
        if unknown:
            raise Pix2PixError(f"unknown config sections {sorted(unknown)}; expected {sorted(sections)}")
        kwargs = {}
        for name, section in sections.items():
            fields = {f.name for f in dataclasses.fields(section)}
            values = d.get(name, {})
            bad = set(values) - fields
            if bad:
                raise Pix2PixError(f"unknown {name} config keys {sorted(bad)}")
            kwargs[name] = section(**values)
        return cls(**kwargs)

    def replace(self, **sections) -> Config:
        """Returns a copy with fields overridden per section, e.g. data={"image_size": 64}."""
        return Config(
            **{
                name: dataclasses.replace(getattr(self, name), **sections.get(name, {}))
                for name in ("data", "model", "train")
            }
        )


@dataclasses.dataclass(frozen=True)
class Connections:
    """How many connections `pix2pix-tf serve` holds and how long each may take (serve/connections.py)."""

    # 64 clients each sending a 32 MB body already hold 2 GB.
    limit_concurrency: int = option(
        64, "open connections at most; the next gets 503 at once (uvicorn's limit_concurrency)"
    )
    backlog: int = option(256, "connections the kernel queues before they are accepted (uvicorn's backlog)")
    timeout_keep_alive: float = option(  # 5 s is uvicorn's default
        5.0,
        "seconds an idle connection stays open, a new one that has sent nothing included "
        "(uvicorn's timeout_keep_alive)",
    )
    header_timeout: float = option(
        10.0,
        "seconds for a request's line and headers to arrive, from the connection or the previous response; "
        "then the connection is closed",
    )
    body_timeout: float = option(60.0, "seconds for a request's body to arrive; then 408")  # a 32 MB body at 0.5 MB/s

    def __post_init__(self):
        _check_whole("limit_concurrency", self.limit_concurrency, 1)
        _check_whole("backlog", self.backlog, 1)
        for name in ("timeout_keep_alive", "header_timeout", "body_timeout"):
            _check_range(name, getattr(self, name), 0, low_open=True)


# Paper settings per dataset (paper sec. 4 and appendix 6.3; reference repo scripts).
# Each preset starts from the defaults and overrides only what differs.
def _facades() -> Config:
    # 400 images, labels->photo is B->A; 200 epochs, batch 1.
    return Config(data=DataConfig(direction="BtoA"), train=TrainConfig(epochs=200))


def _cityscapes() -> Config:
    # 2975 images, photo->labels or labels->photo; 200 epochs, batch 1.
    return Config(data=DataConfig(direction="BtoA"), train=TrainConfig(epochs=200))


def _maps() -> Config:
    # 1096 images, aerial->map; 200 epochs, batch 1.
    return Config(data=DataConfig(direction="AtoB"), train=TrainConfig(epochs=200))


def _edges2shoes() -> Config:
    # 50k images; 15 epochs, batch 4, no random jitter (edges are already aligned).
    return Config(
        data=DataConfig(batch_size=4, preprocess="none", flip=False),
        train=TrainConfig(epochs=15),
    )


def _edges2handbags() -> Config:
    # 137k images; 15 epochs, batch 4.
    return Config(
        data=DataConfig(batch_size=4, preprocess="none", flip=False),
        train=TrainConfig(epochs=15),
    )


def _night2day() -> Config:
    # ~17.8k images; 17 epochs, batch 4.
    return Config(data=DataConfig(batch_size=4), train=TrainConfig(epochs=17))


PRESETS = {
    "facades": _facades,
    "cityscapes": _cityscapes,
    "maps": _maps,
    "edges2shoes": _edges2shoes,
    "edges2handbags": _edges2handbags,
    "night2day": _night2day,
}


def preset(name: str) -> Config:
    """Returns the paper's configuration for a standard dataset."""
    if name not in PRESETS:
        raise Pix2PixError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]()
