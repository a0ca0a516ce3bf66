"""What the paper's three ablation tables compare, as arms: one training configuration each.

An arm is everything that varies between rows (objective, generator, discriminator
field, image size); the rest is shared, so every row gets the same budget, data and
seeds. Rows of different tables that mean the same run (Table 2's U-Net rows are
Table 1's L1 and L1+cGAN rows; Table 3's 70x70 row is L1+cGAN again, if the sizes
agree) are one arm, trained once.

Each row has an id, defined here, that claims and the report refer to it by; its label
(the paper's row name) is only shown. The claims' ids are checked when the rows are
built, before anything is trained.
"""

from __future__ import annotations

import dataclasses
import math

from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.errors import Pix2PixError

TABLES = ("objective", "generator", "discriminator")
PAPER_SIZE = 256  # the paper's image side, which its receptive fields are relative to
PAPER_FIELDS = (1, 16, 70, 286)

# Each table's rows in the paper's order: id (what claims and the code refer to) -> label (the
# paper's row name, shown in the report and never matched).
LABELS = {
    "objective": {"L1": "L1", "GAN": "GAN", "cGAN": "cGAN", "L1+GAN": "L1+GAN", "L1+cGAN": "L1+cGAN"},
    "generator": {
        "encoder-decoder-L1": "Encoder-decoder (L1)",
        "encoder-decoder-L1+cGAN": "Encoder-decoder (L1+cGAN)",
        "unet-L1": "U-Net (L1)",
        "unet-L1+cGAN": "U-Net (L1+cGAN)",
    },
    "discriminator": {
        "pixelgan": "1x1 PixelGAN",
        "patch16": "16x16",
        "patch70": "70x70",
        "imagegan": "286x286 ImageGAN",
        "l1-reference": "L1 alone (no D, reference)",
    },
}

# The paper's FCN-scores (per-pixel acc, per-class acc, class IoU) on Cityscapes labels -> photo, by row id.
PAPER = {
    "objective": {
        "L1": (0.42, 0.15, 0.11),
        "GAN": (0.22, 0.05, 0.01),
        "cGAN": (0.57, 0.22, 0.16),
        "L1+GAN": (0.64, 0.20, 0.15),
        "L1+cGAN": (0.66, 0.23, 0.17),
    },
    "generator": {
        "encoder-decoder-L1": (0.35, 0.12, 0.08),
        "encoder-decoder-L1+cGAN": (0.29, 0.09, 0.05),
        "unet-L1": (0.48, 0.18, 0.13),
        "unet-L1+cGAN": (0.55, 0.20, 0.14),
    },
    "discriminator": {  # the fields of PAPER_FIELDS, in its order
        "pixelgan": (0.39, 0.15, 0.10),
        "patch16": (0.65, 0.21, 0.17),
        "patch70": (0.66, 0.23, 0.17),
        "imagegan": (0.42, 0.16, 0.11),
    },
}
PAPER_GROUND_TRUTH = (0.80, 0.26, 0.21)
# Fig. 7: Lab histogram intersection with the ground truth.
PAPER_LAB = {
    "L1": (0.81, 0.69, 0.70),
    "cGAN": (0.87, 0.74, 0.84),
    "L1+cGAN": (0.86, 0.84, 0.82),
    "PixelGAN": (0.83, 0.68, 0.78),
}
FCN_KEYS = ("per_pixel_acc", "per_class_acc", "class_iou")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every arm shares.

    Attributes:
        steps: training steps per arm (batch `batch_size`).
        seeds: runs per arm and table, seeds 0..K-1; an arm two tables share runs the
            larger count.
        sizes: image side per table; Table 3 is usually larger, so that the
            paper's fields keep their size relative to the image.
        batch_size, ngf, ndf: the small configuration of the demo and notebooks.
        segmenter_steps: training steps of the FCN-score analogue's segmenter.
        pairs: synthetic pairs per dataset (80/10/10 train/val/test).
        quick: a smoke test of the machinery; its numbers mean nothing.
    """

    steps: int
    seeds: dict[str, int]
    sizes: dict[str, int]
    batch_size: int = 4
    ngf: int = 16
    ndf: int = 32
    segmenter_steps: int = 1500
    pairs: int = 400
    quick: bool = False

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 2:
            raise Pix2PixError(f"--steps must be a whole number >= 2; got {self.steps!r}")
        if type(self.segmenter_steps) is not int or self.segmenter_steps < 1:  # bool is an int subclass
            raise Pix2PixError(f"segmenter_steps must be a whole number >= 1; got {self.segmenter_steps!r}")
        for table, seeds in self.seeds.items():
            if table not in TABLES:
                raise Pix2PixError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
            if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= 20:
                raise Pix2PixError(f"--seeds must be a whole number in [1, 20]; got {seeds!r}")
        for table, size in self.sizes.items():
            if table not in TABLES:
                raise Pix2PixError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
            if not isinstance(size, int) or size < 32 or size % 32:
                raise Pix2PixError(f"--image-size must be a multiple of 32 and at least 32; got {size!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Two seeds where GAN variance decides the comparison (Tables 1 and 2); one for Table 3,
# whose 128 px runs cost 3x more, so that `all` fits in about 1.5 hours on 2 CPU cores.
DEFAULT = Settings(
    steps=6000,
    seeds={"objective": 2, "generator": 2, "discriminator": 1},
    sizes={"objective": 64, "generator": 64, "discriminator": 128},
)
QUICK = Settings(
    steps=6,
    seeds=dict.fromkeys(TABLES, 1),
    sizes={"objective": 32, "generator": 32, "discriminator": 128},  # Table 3 needs 128 px for four fields
    segmenter_steps=20,
    pairs=30,
    ngf=8,
    ndf=8,
    quick=True,
)


@dataclasses.dataclass(frozen=True)
class Arm:
    """One training configuration (run once per seed)."""

    image_size: int
    objective: str  # "L1", "GAN", "cGAN", "L1+GAN" or "L1+cGAN" (GAN = D does not see the input)
    generator: str = "unet"
    receptive_field: int = 70

    @property
    def key(self) -> str:
        """The arm's folder name; the D field only where there is a D."""
        d = "" if self.objective == "L1" else f"-D{self.receptive_field}"
        return f"{self.image_size}px-{self.generator}-{self.objective}{d}"

    def config(self, settings: Settings, seed: int) -> Config:
        """The full training configuration of this arm for one seed (float32 everywhere, for comparability)."""
        steps = settings.steps
        return Config(
            data=DataConfig(image_size=self.image_size, batch_size=settings.batch_size, direction="BtoA"),
            model=ModelConfig(
                generator=self.generator,
                ngf=settings.ngf,
                ndf=settings.ndf,
                d_receptive_field=self.receptive_field,
                conditional=self.objective in ("cGAN", "L1+cGAN"),
            ),
            train=TrainConfig(
                use_l1=self.objective.startswith("L1"),
                use_gan=self.objective != "L1",
                steps=steps,
                seed=seed,
                precision="float32",
                checkpoint_every=max(steps // 4, 1),
                keep_checkpoints=2,
                sample_every=max(steps // 4, 1),
                log_every=max(steps // 10, 1),
            ),
        )


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table: the arm behind it, found by `id`, shown as `label`."""

    table: str
    id: str  # a key of LABELS[table]
    arm: Arm
    note: str = ""  # how this row maps to the paper's, where it differs

    @property
    def label(self) -> str:
        """The paper's row name, for display only."""
        return LABELS[self.table][self.id]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One of the paper's claims about a table, checked in `report` against the rows it names.

    Attributes:
        table: the table whose rows decide it.
        text: the claim, as the report states it.
        rows: ids of the rows it compares, in the order its check takes them.
    """

    table: str
    text: str
    rows: tuple[str, ...]


L1_IS_BLURRY = Claim("objective", "L1 alone is blurry", ("L1", "L1+cGAN"))
CGAN_IS_SHARP = Claim("objective", "cGAN alone is sharp but artefact-prone", ("L1", "cGAN", "L1+cGAN"))
GAN_IGNORES_INPUT = Claim("objective", "an unconditional D ignores the input", ("GAN", "cGAN"))
L1_CGAN_IS_BEST = Claim("objective", "L1+cGAN scores best", ("L1+cGAN", "L1", "GAN", "cGAN", "L1+GAN"))
UNET_BEATS_ENCODER_DECODER = Claim(
    "generator",
    "U-Net beats encoder-decoder",
    ("unet-L1", "encoder-decoder-L1", "unet-L1+cGAN", "encoder-decoder-L1+cGAN"),
)
PATCH70_IS_BEST = Claim("discriminator", "70x70 is the sweet spot", ("patch70", "pixelgan", "patch16", "imagegan"))
PIXELGAN_IS_COLOURFUL = Claim(
    "discriminator", "1x1 is colourful but not sharp", ("pixelgan", "patch70", "l1-reference")
)
# In the report's order.
CLAIMS = (
    L1_IS_BLURRY,
    CGAN_IS_SHARP,
    GAN_IGNORES_INPUT,
    L1_CGAN_IS_BEST,
    UNET_BEATS_ENCODER_DECODER,
    PATCH70_IS_BEST,
    PIXELGAN_IS_COLOURFUL,
)


def buildable_fields(image_size: int) -> list[int]:
    """The PatchGAN receptive fields (px) a discriminator can have on `image_size` images, smallest first."""
    from pix2pix_tf.models.discriminator import N_LAYERS, min_image_size  # keras: only when planning

    return sorted(f for f in N_LAYERS if min_image_size(f) <= image_size)


def scaled_field(paper_field: int, image_size: int) -> int:
    """The buildable receptive field whose share of `image_size` is nearest the paper's share of 256 px.

    Nearest on a log scale: a field twice too large is as far off as one half as large.
    """
    target = math.log(paper_field / PAPER_SIZE)
    return min(buildable_fields(image_size), key=lambda f: (abs(math.log(f / image_size) - target), f))


def rows(tables: tuple[str, ...], settings: Settings) -> list[Row]:
    """The rows of the requested tables, in the paper's order.

    Raises:
        Pix2PixError: if the settings do not fit a table, a row has no label, or a
            claim about one of the tables names a row it does not have.
    """
    out = []
    # Tables 1 and 2 use the paper's 70x70 PatchGAN, scaled like Table 3's rows: at 64 px a
    # 70 px field would judge the whole image, which is the paper's 286x286 ImageGAN.
    if "objective" in tables:
        size = settings.sizes["objective"]
        field = scaled_field(70, size)
        out += [
            Row("objective", objective, Arm(size, objective, receptive_field=field))
            for objective in LABELS["objective"]
        ]
    if "generator" in tables:
        size = settings.sizes["generator"]
        field = scaled_field(70, size)
        for generator in ("encoder-decoder", "unet"):
            for objective in ("L1", "L1+cGAN"):
                out.append(Row("generator", f"{generator}-{objective}", Arm(size, objective, generator, field)))
    if "discriminator" in tables:
        size = settings.sizes["discriminator"]
        fields = [scaled_field(f, size) for f in PAPER_FIELDS]
        if len(set(fields)) < len(fields):
            raise Pix2PixError(
                f"at {size} px Table 3's fields collapse: the paper's {', '.join(map(str, PAPER_FIELDS))} map to "
                f"{', '.join(map(str, fields))} px; use --image-size 128 or more for the discriminator table"
            )
        for row_id, paper_field, field in zip(PAPER["discriminator"], PAPER_FIELDS, fields, strict=True):
            note = f"here {field}x{field} at {size} px: {field / size:.3f} of the side, paper {paper_field / 256:.3f}"
            out.append(Row("discriminator", row_id, Arm(size, "L1+cGAN", receptive_field=field), note))
        # Fig. 7 compares the PixelGAN's colours with L1 alone, at the same size.
        out.append(Row("discriminator", "l1-reference", Arm(size, "L1")))
    _check_ids(out)
    return out


def _check_ids(table_rows: list[Row]) -> None:
    # Here, not when the report is written: a row without a label, or a claim naming a row
    # that is not built, would otherwise fail only after every arm has trained.
    ids: dict[str, list[str]] = {}
    for row in table_rows:
        if row.id not in LABELS[row.table]:
            raise Pix2PixError(f"row {row.id!r} of table {row.table!r} has no label in plan.LABELS")
        ids.setdefault(row.table, []).append(row.id)
    for claim in CLAIMS:
        if claim.table not in TABLES:
            raise Pix2PixError(
                f"the claim {claim.text!r} is about table {claim.table!r}; expected one of {', '.join(TABLES)}"
            )
        built = ids.get(claim.table, [])
        missing = [row_id for row_id in claim.rows if built and row_id not in built]
        if missing:
            raise Pix2PixError(
                f"the claim {claim.text!r} names row {', '.join(map(repr, missing))}, which table {claim.table!r} "
                f"does not have (its rows: {', '.join(built)}); "
                "fix the claim's row ids in pix2pix_tf/experiments/plan.py"
            )


def arms(table_rows: list[Row]) -> list[Arm]:
    """The distinct arms behind `table_rows`, in first-use order."""
    return list(dict.fromkeys(row.arm for row in table_rows))


def seeds_per_arm(table_rows: list[Row], settings: Settings) -> dict[Arm, int]:
    """How many seeds each arm runs: the most any table using it asks for."""
    counts: dict[Arm, int] = {}
    for row in table_rows:
        counts[row.arm] = max(counts.get(row.arm, 0), settings.seeds[row.table])
    return counts
