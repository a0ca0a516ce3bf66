"""Typed, frozen configuration for data, models and training, plus paper presets.

The resolved configuration is written as JSON next to every checkpoint and export,
so a trained model reloads without repeating a single flag.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from pix2pix_tf.errors import Pix2PixError

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width_and_crop", "none")
NORMS = ("batch", "syncbatch", "instance", "none")  # syncbatch: batch statistics over all replicas
GENERATORS = ("unet", "encoder-decoder")
RECEPTIVE_FIELDS = (1, 16, 34, 70, 142, 286)
GAN_LOSSES = ("vanilla", "lsgan")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")  # auto: see pix2pix_tf.precision
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")  # see pix2pix_tf.train.distribute
TFLITE_VARIANTS = ("float32", "float16", "int8", "dynamic")
# The layout of a training work dir, known here only.
CONFIG_FILE = "config.json"  # the resolved config, in every work dir and export
CHECKPOINT_DIR = "checkpoints"
RUN_FILE = "run.json"  # the dataset and the last losses of the latest run
LOGS_DIR = "logs"  # TensorBoard
SAMPLES_DIR = "samples"
EVAL_DIR = "eval"  # evaluate's results, one folder per split and step
WORKDIR_ENTRIES = (CONFIG_FILE, CHECKPOINT_DIR, RUN_FILE, LOGS_DIR, SAMPLES_DIR, EVAL_DIR)


def eval_dir(workdir: str | Path, split: str, step: int) -> Path:
    """Where `evaluate` puts its results for `split` at `step` by default (and export looks for them)."""
    return Path(workdir) / EVAL_DIR / f"{split}_step{step}"


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


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How image files become (input, target) batches.

    Attributes:
        image_size: side of the square crop fed to the networks (multiple of 32).
        load_size: side the image is resized to before the random crop; `None`
            resolves to image_size * 286 / 256 (286 for 256, as in the paper).
        channels: 3 (RGB) or 1 (grayscale); other channel counts are converted.
        direction: "AtoB" translates the left/A image into the right/B image.
        preprocess: one of PREPROCESS_MODES (the reference repo's modes).
        flip: random horizontal mirror at train time.
        batch_size: images per step (the paper uses 1 for most experiments); the
            global batch when training on several replicas, each taking an equal share.
        cache: keep decoded, resized images in memory after the first pass.
        skip_bad: skip unreadable or malformed files instead of failing.
    """

    image_size: int = 256
    load_size: int | None = None
    channels: int = 3
    direction: str = "AtoB"
    preprocess: str = "resize_and_crop"
    flip: bool = True
    batch_size: int = 1
    cache: bool = False
    skip_bad: bool = False

    def __post_init__(self):
        _check_whole("image_size", self.image_size, 32)
        _check_whole("batch_size", self.batch_size, 1)
        _check_whole("load_size", self.load_size, 1, optional=True)
        if self.image_size % 32:
            raise Pix2PixError(f"image_size must be a multiple of 32 and at least 32; got {self.image_size}")
        if self.resize_to < self.image_size:
            raise Pix2PixError(f"load_size ({self.resize_to}) must be >= image_size ({self.image_size})")
        if self.channels not in (1, 3):
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

    generator: str = "unet"  # "encoder-decoder" is the paper's no-skip baseline
    ngf: int = 64
    ndf: int = 64
    norm: str = "batch"
    dropout: float = 0.5  # the generator's only noise source (paper, sec. 3.1)
    d_receptive_field: int = 70
    conditional: bool = True  # D sees the input image as well as the target

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

    gan_loss: str = "vanilla"
    lambda_l1: float = 100.0
    use_gan: bool = True
    use_l1: bool = True
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    steps: int | None = None
    epochs: int | None = None
    decay_steps: int | None = None
    decay_epochs: int | None = None
    precision: str = "auto"  # resolved per machine when training starts; config.json records the choice
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    sample_every: int = 200
    log_every: int = 10
    steps_per_call: int | None = None  # steps per tf.function call; None sizes calls to ~0.2 s on this machine
    # The tf.distribute strategy; data.batch_size is the global batch, split over its replicas.
    strategy: str = "auto"

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
    """How many connections `pix2pix-tf serve` holds and how long each may take (serve/connections.py).

    Attributes:
        limit_concurrency: open connections at most (uvicorn's `limit_concurrency`);
            the next is answered 503 and closed at once.
        backlog: connections the kernel queues before the server accepts them
            (uvicorn's `backlog`).
        timeout_keep_alive: seconds an idle connection stays open, a new one that has
            sent nothing included (uvicorn's `timeout_keep_alive`).
        header_timeout: seconds for a request's line and headers to arrive, from the
            connection or the previous response; then the connection is closed.
        body_timeout: seconds for a request's whole body to arrive; then 408.
    """

    limit_concurrency: int = 64  # 64 clients each sending a 32 MB body already hold 2 GB
    backlog: int = 256
    timeout_keep_alive: float = 5.0  # uvicorn's default
    header_timeout: float = 10.0
    body_timeout: float = 60.0  # a 32 MB body at 0.5 MB/s

    def __post_init__(self):
        _check_whole("limit_concurrency", self.limit_concurrency, 1)
        _check_whole("backlog", self.backlog, 1)
        for name in ("timeout_keep_alive", "header_timeout", "body_timeout"):
            _check_range(name, getattr(self, name), 0, low_open=True)


def write_json(path: str | Path, data) -> None:
    """Writes `data` as JSON; the file is replaced whole, never left half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path, what: str) -> dict:
    """Reads a JSON object, or raises a Pix2PixError naming the file and `what` it should be."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Pix2PixError(f"{path} not found: expected {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Pix2PixError(f"{path} is damaged: expected {what}, found invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise Pix2PixError(f"{path}: expected {what} (a JSON object), found {type(data).__name__}")
    return data


def save_config(config: Config, path: str | Path) -> None:
    """Writes `config` as JSON; the file is replaced whole, never left half-written."""
    write_json(path, config.to_dict())


def load_config(path: str | Path) -> Config:
    """Reads a config.json written by training or export; any problem is a Pix2PixError naming the file."""
    data = read_json(path, "the config.json written by training")
    try:
        return Config.from_dict(data)
    except TypeError as e:
        raise Pix2PixError(f"{path} is not a valid pix2pix_tf config: {e}") from None
    except Pix2PixError as e:
        raise Pix2PixError(f"{path}: {e}") from None


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
