"""The training work dir: the only module that knows its file names.

    <workdir>/config.json              the resolved config (written with the first checkpoint)
    <workdir>/checkpoints/             tf.train.CheckpointManager's files
    <workdir>/run.json                 the dataset, last losses and precision of the latest run
    <workdir>/logs/train/              TensorBoard
    <workdir>/samples/step_NNNNNNN.png sample grids, and latest.png
    <workdir>/eval/<split>_step<N>/    evaluate's results (an `EvalDir`)

Resolving the configuration of a (re)run also lives here: it reads the saved config.json.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.files import CONFIG_FILE, load_config, read_json, save_config
from pix2pix_tf.artifacts.folder import Folder
from pix2pix_tf.config import Config
from pix2pix_tf.errors import Pix2PixError

CHECKPOINT_DIR = "checkpoints"
RUN_FILE = "run.json"
LOGS_DIR = "logs"
SAMPLES_DIR = "samples"
LATEST_SAMPLE = "latest.png"
EVAL_DIR = "eval"
ENTRIES = (CONFIG_FILE, CHECKPOINT_DIR, RUN_FILE, LOGS_DIR, SAMPLES_DIR, EVAL_DIR)

# Sections whose change makes old checkpoints unusable; "train" may change on resume.
_SHAPE_FIELDS = {"data": ("image_size", "channels", "direction"), "model": None}


@dataclasses.dataclass(frozen=True)
class WorkDir(Folder):
    """Paths inside a training work dir (nothing is created until written)."""

    @classmethod
    def holding(cls, checkpoints: str | Path) -> WorkDir:
        """The work dir whose checkpoint folder is `checkpoints`."""
        return cls(Path(checkpoints).parent)

    @property
    def holds_run(self) -> bool:
        """True if the folder holds a trained run: a config.json and a checkpoint folder."""
        return self.config.is_file() and self.checkpoints.is_dir()

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def run_record(self) -> Path:
        return self.root / RUN_FILE

    @property
    def logs(self) -> Path:
        """TensorBoard's log dir (`tensorboard --logdir` takes this one)."""
        return self.root / LOGS_DIR

    @property
    def train_logs(self) -> Path:
        return self.logs / "train"

    @property
    def samples(self) -> Path:
        return self.root / SAMPLES_DIR

    @property
    def latest_sample(self) -> Path:
        return self.samples / LATEST_SAMPLE

    def read_scalars(self) -> dict[str, tuple[list[int], list[float]]]:
        """Every scalar the run logged for TensorBoard (losses, learning rate, speed), by tag.

        Read with TensorBoard's own event reader; a resumed run's later events replace
        earlier ones at the same step.

        Returns:
            {tag: (steps, values)}, steps ascending; empty if nothing was logged yet.
        """
        from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
        from tensorboard.util.tensor_util import make_ndarray

        by_tag: dict[str, dict[int, float]] = {}
        for events in sorted(self.train_logs.glob("events.out.tfevents.*")):  # named by their start time
            reader = EventAccumulator(str(events), size_guidance={TENSORS: 0})
            reader.Reload()
            for tag in reader.Tags()[TENSORS]:
                for event in reader.Tensors(tag):
                    value = make_ndarray(event.tensor_proto)
                    if value.ndim == 0 and value.dtype.kind == "f":  # not the sample images
                        by_tag.setdefault(tag, {})[event.step] = float(value)
        return {tag: (sorted(points), [points[k] for k in sorted(points)]) for tag, points in sorted(by_tag.items())}

    def read_config(self) -> Config:
        """The saved config.json; a Pix2PixError names the file if it is missing or invalid."""
        return load_config(self.config)

    def write_config(self, config: Config) -> None:
        """Saves `config` as the work dir's config.json (replaced whole)."""
        save_config(config, self.config)

    def read_run_record(self) -> dict:
        """The run record (run.json) of the latest run, {} if there is none yet."""
        if not self.run_record.exists():
            return {}
        return read_json(self.run_record, "the run record written by training")

    def entry_of(self, path: str | Path) -> str | None:
        """The name of the work dir's own entry (ENTRIES) that `path` is or is inside, else None."""
        root, path = self.root.resolve(), Path(path).resolve()
        if root not in path.parents:
            return None
        first = path.relative_to(root).parts[0]
        return first if first in ENTRIES else None

    def sample(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def save_sample(self, png: bytes, step: int) -> Path:
        """Writes a sample grid as step `step`'s and as the latest; returns the step's path."""
        self.samples.mkdir(parents=True, exist_ok=True)
        path = self.sample(step)
        path.write_bytes(png)
        self.latest_sample.write_bytes(png)
        return path

    def evaluation(self, split: str, step: int) -> Path:
        """Where `evaluate` puts its results for `split` at `step` by default (and export looks for them)."""
        return self.root / EVAL_DIR / f"{split}_step{step}"


def resolve_config(workdir: str | Path, base: Config, overrides: dict[str, dict]) -> Config:
    """The configuration for (re)running training in `workdir`.

    A new work dir takes `base` with `overrides`. An existing one starts from its
    saved config.json, so rerunning needs no flags repeated; explicit overrides of
    the model or the image format must agree with it (old checkpoints could not be
    loaded otherwise), while training settings such as the length may change.

    Args:
        workdir: the run directory.
        base: defaults or a preset, used for a new work dir.
        overrides: per section, the options given explicitly, e.g. {"train": {"steps": 40}}.
    """
    path = WorkDir(workdir).config
    if not path.exists():
        return base.replace(**overrides)
    saved = load_config(path)
    conflicts = []
    for section, fields in _SHAPE_FIELDS.items():
        for key, value in overrides.get(section, {}).items():
            old = getattr(getattr(saved, section), key)
            if (fields is None or key in fields) and value != old:
                conflicts.append(f"{section}.{key}: trained with {old!r}, asked for {value!r}")
    if conflicts:
        raise Pix2PixError(
            f"{path} does not match this command ({'; '.join(conflicts)}); "
            "drop those options to resume, or use a new --workdir"
        )
    return saved.replace(**overrides)
