"""Evaluation (L1 / PSNR / SSIM on 8-bit images, results page) and prediction on files."""

from __future__ import annotations

import contextlib
import html
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.artifacts.evaldir import MARKER, EvalDir
from pix2pix_tf.artifacts.files import staged_output, write_json
from pix2pix_tf.config import Config
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, to_uint8
from pix2pix_tf.models import generate


def image_metrics(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """L1 (mean |difference| / 255), PSNR (dB, peak 255) and SSIM of two uint8 (H, W, C) images."""
    out, tgt = tf.constant(output, tf.float32), tf.constant(target, tf.float32)
    return {
        "l1": float(tf.reduce_mean(tf.abs(out - tgt))) / 255.0,
        "psnr": float(tf.image.psnr(out, tgt, max_val=255.0)),
        "ssim": float(tf.image.ssim(out, tgt, max_val=255.0)),
    }


def _mean(rows: list[dict], keys=("l1", "psnr", "ssim")) -> dict[str, float]:
    # An identical pair has infinite PSNR; cap it so the mean stays a number.
    return {k: float(np.mean([min(r[k], 100.0) for r in rows])) for k in keys}


def evaluate(
    generator: keras.Model,
    config: Config,
    data_dir: str | Path,
    split: str = "test",
    out_dir: str | Path | None = None,
    stochastic: bool = False,
    title: str = "",
) -> dict:
    """Translates every pair of a split and scores the outputs against the targets.

    Args:
        generator: the model to evaluate.
        config: its configuration (image size, channels, direction).
        data_dir: dataset directory.
        split: split to evaluate.
        out_dir: if given, writes the results there (metrics, page and images; see `EvalDir`).
        stochastic: the paper's test mode (dropout on, batch statistics) instead of the
            deterministic one; each image is translated on its own, as `predict` does.
        title: heading of the results page.

    Returns:
        {"mean": {"l1", "psnr", "ssim"}, "images": [{"name", "l1", "psnr", "ssim"}, ...], ...}
    """
    pairs = find_pairs(data_dir, split, config.data)
    rows = []
    # The page is built beside out_dir and swapped in whole: a failure or a full disk
    # leaves the previous one, and a folder evaluate did not write is never replaced.
    staged = (
        staged_output(
            Path(out_dir),
            "the evaluation",
            marker=MARKER,
            made_by="pix2pix-tf evaluate",
            accept=lambda folder: EvalDir(folder).written_before_markers(),
        )
        if out_dir
        else contextlib.nullcontext(None)
    )
    with staged as folder:
        stage = EvalDir(folder) if folder else None
        if stage:
            stage.images.mkdir()
        # The stochastic mode normalises with the statistics of the batch it is given: one
        # image at a time, as predict --stochastic and the paper's test mode run it, so
        # an image's score does not depend on which images share its batch.
        for source, target, names in eval_dataset(pairs, config.data, batch_size=1 if stochastic else 8):
            output = to_uint8(generate(generator, source, stochastic=stochastic)).numpy()
            source, target = to_uint8(source).numpy(), to_uint8(target).numpy()
            for i, name in enumerate(n.decode() for n in names.numpy()):
                rows.append({"name": name, **image_metrics(output[i], target[i])})
                if stage:
                    for kind, image in (("input", source[i]), ("output", output[i]), ("target", target[i])):
                        stage.image(name, kind).write_bytes(tf.io.encode_png(image).numpy())
        result = {
            "split": split,
            "count": len(rows),
            "stochastic": stochastic,
            "mean": _mean(rows),
            "images": rows,
            "metric_notes": "8-bit images; l1 = mean absolute difference / 255; psnr in dB (peak 255, "
            "capped at 100 for identical images in the mean); ssim with an 11x11 Gaussian window",
        }
        if stage:
            write_json(stage.metrics, result)
            _write_index(stage, result, title or f"pix2pix_tf results: {split}")
    return result


def _write_index(out_dir: EvalDir, result: dict, title: str) -> None:
    mean = result["mean"]
    rows = "\n".join(
        f"<tr><td>{html.escape(r['name'])}</td>"
        + "".join(
            f'<td><img src="{html.escape(EvalDir.image_link(r["name"], kind))}"></td>'
            for kind in ("input", "output", "target")
        )
        + f"<td>{r['l1']:.4f}</td><td>{r['psnr']:.2f}</td><td>{r['ssim']:.4f}</td></tr>"
        for r in result["images"]
    )
    out_dir.page.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} img{{width:192px;image-rendering:pixelated}} td{{padding:4px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{result["count"]} images; mean L1 {mean["l1"]:.4f}, PSNR {mean["psnr"]:.2f} dB, SSIM {mean["ssim"]:.4f}</p>
<table><tr><th>name</th><th>input</th><th>output</th><th>target</th><th>L1</th><th>PSNR</th><th>SSIM</th></tr>
{rows}
</table></body></html>
""")
