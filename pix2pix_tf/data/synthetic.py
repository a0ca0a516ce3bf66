"""Built-in synthetic paired datasets, generated offline and deterministic by seed.

* ``facades``: CMP-Facades-style label maps (A|B = photo|labels, like the real
  dataset, so labels->photo is ``BtoA``). Every class is rendered with a random
  colour, texture and lighting per image, so one label map has many plausible
  photos and an L1-only generator can only predict their blurry mean.
* ``edges2shapes``: thin edge drawings -> filled, shaded, coloured shapes
  (A|B = edges|photo, ``AtoB``, like edges2shoes).

Each image is drawn from its own generator seeded by (seed, split, index), so a
file does not depend on how many others are made.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pix2pix_tf.artifacts.datasets import SYNTH_MARKER
from pix2pix_tf.artifacts.files import read_stamp, staged_output
from pix2pix_tf.errors import Pix2PixError

# The 12 CMP Facades classes with the jet-colormap colours of the dataset's label
# images (class k of 12 -> jet((k - 1) / 11)).
FACADE_CLASSES = (
    "background",
    "facade",
    "window",
    "door",
    "cornice",
    "sill",
    "balcony",
    "blind",
    "deco",
    "molding",
    "pillar",
    "shop",
)
FACADE_PALETTE = np.array(
    [
        [0, 0, 170],
        [0, 0, 255],
        [0, 85, 255],
        [0, 170, 255],
        [0, 255, 255],
        [85, 255, 170],
        [170, 255, 85],
        [255, 255, 0],
        [255, 170, 0],
        [255, 85, 0],
        [255, 0, 0],
        [170, 0, 0],
    ],
    dtype=np.uint8,
)
_C = {name: i for i, name in enumerate(FACADE_CLASSES)}

SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a random (cells x cells) grid upsampled bilinearly."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    t = np.linspace(0, cells, size, endpoint=False, dtype=np.float32)
    i, f = t.astype(int), t - t.astype(int)
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f) + rows[:, i + 1] * f


# ---------------------------------------------------------------- facades


def facade_labels(rng: np.random.Generator, s: int) -> np.ndarray:
    """Draws an (s, s) map of FACADE_CLASSES indices: floors of windows, doors at street level."""
    lab = np.full((s, s), _C["background"], np.uint8)

    def box(y0, y1, x0, x1, cls):
        lab[max(int(y0), 0) : max(int(y1), 0), max(int(x0), 0) : max(int(x1), 0)] = cls

    left, right = rng.uniform(0, 0.08) * s, rng.uniform(0.92, 1.0) * s
    top = rng.uniform(0.03, 0.25) * s
    box(top, s, left, right, _C["facade"])
    if rng.random() < 0.5:  # pilasters framing the facade
        pw = rng.uniform(0.03, 0.06) * s
        box(top, s, left, left + pw, _C["pillar"])
        box(top, s, right - pw, right, _C["pillar"])
        left, right = left + pw, right - pw
    n_floors = rng.integers(3, 7)
    ground = rng.uniform(1.2, 1.6)  # the street-level floor is taller
    floor_h = (s - top) / (n_floors - 1 + ground)
    n_cols = rng.integers(2, 7)
    col_w = (right - left) / n_cols
    win_w = col_w * rng.uniform(0.35, 0.65)
    win_h = floor_h * rng.uniform(0.45, 0.7)
    has_mold, has_blind = rng.random() < 0.5, rng.random() < 0.3
    for f in range(n_floors - 1):
        y = top + f * floor_h
        if f > 0 or rng.random() < 0.7:
            box(y, y + max(2, 0.06 * floor_h), left, right, _C["cornice"])
        wy = y + (floor_h - win_h) * 0.55
        if rng.random() < 0.3 and f > 0:  # a balcony runs along this floor
            box(wy + win_h * 0.6, wy + win_h + 0.08 * floor_h, left + 0.3 * col_w, right - 0.3 * col_w, _C["balcony"])
        for c in range(n_cols):
            cx = left + (c + 0.5) * col_w
            if has_mold:
                m = max(1, 0.08 * win_w)
                box(wy - m, wy + win_h + m, cx - win_w / 2 - m, cx + win_w / 2 + m, _C["molding"])
            if has_blind:
                bw = 0.3 * win_w
                box(wy, wy + win_h, cx - win_w / 2 - bw, cx - win_w / 2, _C["blind"])
                box(wy, wy + win_h, cx + win_w / 2, cx + win_w / 2 + bw, _C["blind"])
            box(wy, wy + win_h, cx - win_w / 2, cx + win_w / 2, _C["window"])
            box(wy + win_h, wy + win_h + max(1, 0.05 * floor_h), cx - 0.6 * win_w, cx + 0.6 * win_w, _C["sill"])
            if rng.random() < 0.15:
                box(y + 0.1 * floor_h, wy - 0.05 * floor_h, cx - 0.15 * win_w, cx + 0.15 * win_w, _C["deco"])
    # Street level: a shop front or windows, and one or two doors.
    gy = top + (n_floors - 1) * floor_h
    box(gy, gy + max(2, 0.05 * floor_h), left, right, _C["cornice"])
    door_w, door_h = col_w * rng.uniform(0.4, 0.7), ground * floor_h * rng.uniform(0.6, 0.85)
    doors = rng.choice(n_cols, size=min(n_cols, rng.integers(1, 3)), replace=False)
    for c in range(n_cols):
        cx = left + (c + 0.5) * col_w
        if c in doors:
            box(s - door_h, s, cx - door_w / 2, cx + door_w / 2, _C["door"])
        elif rng.random() < 0.6:
            box(gy + 0.2 * floor_h, s - 0.1 * floor_h, cx - 0.42 * col_w, cx + 0.42 * col_w, _C["shop"])
        else:
            box(s - door_h, s - door_h + win_h, cx - win_w / 2, cx + win_w / 2, _C["window"])
    return lab


def _hsv_to_rgb(h, s, v):
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


# Per class: (hue range, saturation range, value range, texture kind).
_FACADE_STYLE = {
    "background": ((0.55, 0.65), (0.05, 0.4), (0.6, 0.95), "sky"),
    "facade": ((0.0, 1.0), (0.05, 0.45), (0.45, 0.9), "wall"),
    "window": ((0.5, 0.7), (0.1, 0.5), (0.1, 0.45), "glass"),
    "door": ((0.02, 0.12), (0.3, 0.8), (0.15, 0.5), "wood"),
    "cornice": ((0.0, 1.0), (0.0, 0.2), (0.6, 1.0), "stone"),
    "sill": ((0.0, 1.0), (0.0, 0.2), (0.6, 1.0), "stone"),
    "balcony": ((0.0, 1.0), (0.0, 0.3), (0.05, 0.35), "rail"),
    "blind": ((0.0, 1.0), (0.2, 0.8), (0.3, 0.8), "slats"),
    "deco": ((0.0, 1.0), (0.0, 0.3), (0.5, 0.95), "stone"),
    "molding": ((0.0, 1.0), (0.0, 0.25), (0.55, 1.0), "stone"),
    "pillar": ((0.0, 1.0), (0.0, 0.3), (0.4, 0.9), "stone"),
    "shop": ((0.0, 1.0), (0.2, 0.9), (0.2, 0.8), "glass"),
}


def _texture(kind: str, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A (s, s) multiplicative texture around 1; yy, xx are pixel coordinates / s."""
    s = yy.shape[0]

    def fine():
        return _smooth_noise(rng, s, max(4, s // 4))

    def coarse():
        return _smooth_noise(rng, s, 4)

    if kind == "sky":
        return 1 + 0.25 * (yy - 0.5) + 0.1 * coarse()
    if kind == "wall":
        period = rng.uniform(0.02, 0.05)
        bricks = (np.mod(yy / period, 1) < 0.12) * rng.uniform(0, 0.25)
        return 1 - bricks + rng.uniform(0.03, 0.15) * fine() + 0.1 * coarse()
    if kind == "glass":
        angle = rng.uniform(-1, 1)
        return 1 + rng.uniform(0.2, 0.6) * np.sin(6 * (xx + angle * yy) + rng.uniform(0, 6)) + 0.05 * fine()
    if kind == "wood":
        return 1 + 0.15 * np.sin(xx * s * rng.uniform(0.3, 0.8) + 3 * coarse()) + 0.05 * fine()
    if kind == "slats":
        return 1 - 0.3 * (np.mod(yy * s, max(2, s // 64) * 2) < max(1, s // 64))
    if kind == "rail":
        return 1 + 0.6 * (np.mod(xx * s, max(3, s // 32)) < 1)
    return 1 + 0.08 * fine() + 0.05 * coarse()  # stone


def facade_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one (photo, label map) pair, each (size, size, 3) uint8."""
    labels = facade_labels(rng, size)
    return render_facade(labels, rng), FACADE_PALETTE[labels]


def render_facade(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Renders a (size, size) class-index map as a (size, size, 3) uint8 "photo".

    Colours, textures and lighting are drawn from `rng`: one label map has many
    renderings.
    """
    size = labels.shape[0]
    yy, xx = (np.mgrid[0:size, 0:size] / size).astype(np.float32)
    colours = np.zeros((len(FACADE_CLASSES), 3), np.float32)
    textures = np.ones((len(FACADE_CLASSES), size, size), np.float32)
    present = np.bincount(labels.ravel(), minlength=len(FACADE_CLASSES)) > 0
    for cls, (hue, sat, val, kind) in _FACADE_STYLE.items():
        if present[_C[cls]]:
            colours[_C[cls]] = _hsv_to_rgb(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))
            textures[_C[cls]] = _texture(kind, rng, yy, xx)
    # Each pixel takes its class's colour times its class's texture at that pixel.
    texture = np.take_along_axis(textures, labels[None].astype(np.intp), axis=0)[0]
    photo = colours[labels] * texture[..., None]
    # Lighting: a directional gradient, shadows under cornices, sills and balconies.
    direction = rng.uniform(-1, 1, 2)
    light = 1 + rng.uniform(0.1, 0.35) * (direction[0] * (xx - 0.5) + direction[1] * (yy - 0.5))
    casting = np.isin(labels, [_C["cornice"], _C["sill"], _C["balcony"]])
    shadow = np.zeros((size, size), bool)
    for d in range(1, max(2, size // 64) + 1):
        shadow[d:] |= casting[:-d]
    light = light * np.where(shadow & ~casting, rng.uniform(0.55, 0.8), 1.0)
    photo = photo * light[..., None] * rng.uniform(0.8, 1.15)
    photo += 0.015 * rng.standard_normal(photo.shape, dtype=np.float32)  # sensor noise
    return np.clip(photo * 255, 0, 255).astype(np.uint8)


# ----------------------------------------------------------- edges2shapes


def _shape_polygon(rng: np.random.Generator, s: int) -> tuple[str, list]:
    cx, cy = rng.uniform(0.2, 0.8, 2) * s
    r = rng.uniform(0.12, 0.3) * s
    kind = rng.choice(["ellipse", "rectangle", "triangle", "star", "polygon"])
    if kind == "ellipse":
        rx, ry = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0)
        return kind, [cx - rx, cy - ry, cx + rx, cy + ry]
    if kind == "rectangle":
        w, h = r * rng.uniform(0.6, 1.2), r * rng.uniform(0.6, 1.2)
        return "polygon", [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)]
    n = {"triangle": 3, "star": 10, "polygon": int(rng.integers(5, 9))}[kind]
    phase = rng.uniform(0, 2 * np.pi)
    radii = [r * (0.45 if kind == "star" and k % 2 else 1.0) for k in range(n)]
    return "polygon", [
        (cx + rr * np.cos(phase + 2 * np.pi * k / n), cy + rr * np.sin(phase + 2 * np.pi * k / n))
        for k, rr in enumerate(radii)
    ]


def edges_shape_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one (edge drawing, shaded shapes) pair, each (size, size, 3) uint8."""
    ids = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(ids)
    n_shapes = int(rng.integers(1, 5))
    for k in range(1, n_shapes + 1):
        kind, coords = _shape_polygon(rng, size)
        (draw.ellipse if kind == "ellipse" else draw.polygon)(coords, fill=k)
    ids = np.asarray(ids)
    yy, xx = np.mgrid[0:size, 0:size] / size
    bg = _hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.15), rng.uniform(0.8, 1.0))
    photo = bg * (1 - 0.15 * yy)[..., None]
    lx, ly = rng.uniform(-1, 1, 2)
    for k in range(1, n_shapes + 1):
        mask = ids == k
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean() / size, xs.mean() / size
        extent = max(np.ptp(ys), np.ptp(xs), 1) / size
        # Shading as if lit from (lx, ly): bright on the lit side, a highlight.
        d = ((xx - cx) * lx + (yy - cy) * ly) / extent
        shade = np.clip(1.0 - 0.8 * d, 0.35, 1.4)
        highlight = np.exp(
            -(((xx - cx + 0.2 * lx * extent) ** 2 + (yy - cy + 0.2 * ly * extent) ** 2) / (0.02 * extent))
        )
        colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.5, 0.95))
        shaded = colour * shade[..., None] + 0.35 * highlight[..., None]
        photo[mask] = shaded[mask]
    # Edges: where the shape id changes between neighbours (HED-like outlines).
    boundary = np.zeros((size, size), bool)
    boundary[:-1] |= ids[:-1] != ids[1:]
    boundary[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edges = np.where(boundary, 0, 255).astype(np.uint8)
    return np.repeat(edges[..., None], 3, axis=-1), np.clip(photo * 255, 0, 255).astype(np.uint8)


SYNTHETIC = {"facades": facade_pair, "edges2shapes": edges_shape_pair}


def split_counts(count: int) -> dict[str, int]:
    """Splits `count` pairs 80/10/10 into train/val/test, each at least one."""
    if count < 3:
        raise Pix2PixError(f"count must be at least 3 (one pair per split); got {count}")
    val = test = max(1, round(count * SPLIT_FRACTIONS["val"]))
    return {"train": count - val - test, "val": val, "test": test}


def synthesize(
    name: str, out: str | Path, count: int = 500, size: int = 256, seed: int = 0, quiet: bool = False
) -> dict[str, int]:
    """Writes a synthetic dataset as A|B JPEGs in ``out/{train,val,test}/``.

    The dataset is written beside `out` and swapped in whole, so `out` holds either
    the previous dataset or the new one, never a mix.

    Args:
        name: "facades" or "edges2shapes".
        out: output directory: missing, empty, or a dataset `synthesize` wrote before
            (recognised by its marker file; it is replaced). Any other folder is
            refused, so that files in it are never overwritten.
        count: total number of pairs, split 80/10/10.
        size: side of each half, in pixels.
        seed: the same seed gives the same files.
        quiet: do not print the "wrote ..." line.

    Returns:
        Number of pairs written per split.

    Raises:
        Pix2PixError: a bad argument, an `out` that may not be replaced, or a full disk.
    """
    if name not in SYNTHETIC:
        raise Pix2PixError(f"unknown synthetic dataset {name!r}; choose from {', '.join(SYNTHETIC)}")
    if size < 32:
        raise Pix2PixError(f"size must be at least 32; got {size}")
    if not 0 <= seed < 2**32:  # NumPy's seeds are unsigned 32-bit
        raise Pix2PixError(f"seed must be a whole number in [0, 4294967296); got {seed}")
    draw_pair = SYNTHETIC[name]
    counts = split_counts(count)
    start = time.perf_counter()
    stamp = {"name": name, "count": count, "size": size, "seed": seed}
    with staged_output(
        Path(out),
        f"the synthetic {name} dataset",
        marker=SYNTH_MARKER,
        made_by="pix2pix-tf data synth",
        stamp=stamp,
    ) as stage:
        for split_id, (split, n) in enumerate(counts.items()):
            folder = stage / split
            folder.mkdir()
            for i in range(n):
                rng = np.random.default_rng([seed, split_id, i])
                a, b = draw_pair(rng, size)
                Image.fromarray(np.concatenate([a, b], axis=1)).save(
                    folder / f"{i + 1}.jpg", quality=95, subsampling=0
                )  # 4:4:4 keeps label edges crisp
    if not quiet:
        print(
            f"wrote {count} {name} pairs ({size}px) to {out} in {time.perf_counter() - start:.1f}s: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    return counts


def example_dataset(name: str, root: str | Path, size: int, count: int, seed: int = 0) -> Path:
    """A synthetic dataset for walkthroughs and examples, written once and shared.

    Its folder under `root` is named by what it holds (``facades_64px_120`` for 120
    facades at 64 px, seed 0), so callers asking for different datasets never
    replace each other's, and asking again for the same one reuses it.

    Returns:
        The dataset's folder (A|B JPEGs in ``train/``, ``val/``, ``test/``).
    """
    out = Path(root) / (f"{name}_{size}px_{count}" + ("" if seed == 0 else f"_seed{seed}"))
    wanted = {"name": name, "count": count, "size": size, "seed": seed}
    stamp = read_stamp(out, SYNTH_MARKER)
    if {k: stamp.get(k) for k in wanted} != wanted:
        synthesize(name, out, count=count, size=size, seed=seed, quiet=True)
    return out
