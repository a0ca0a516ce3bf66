"""The export's model card and its report (report.json for programs, report.md for people)."""

from __future__ import annotations

import datetime

from pix2pix_tf.artifacts.evaldir import EvalDir
from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.config import Config
from pix2pix_tf.errors import Pix2PixError


def model_card(config: Config, workdir: WorkDir, step: int, params: int) -> tuple[dict, str]:
    """The model card, with the evaluation of the exported step if there is one.

    Returns:
        (card, a note for the report on where its metrics come from).
    """
    card = {
        "model": "pix2pix U-Net generator (Isola et al., CVPR 2017)",
        "input": {
            "size": [config.data.image_size, config.data.image_size],
            "channels": config.data.channels,
            "range": "[-1, 1] for serving_default; uint8 for translate_image; encoded images for translate_bytes",
        },
        "direction": config.data.direction,
        "steps_trained": step,
        "parameters": params,
        "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    # `evaluate` writes to the work dir's evaluation folder of a split and step by
    # default; metrics of any other step describe another model.
    for split in ("test", "val"):
        metrics = EvalDir(workdir.evaluation(split, step)).metrics
        if not metrics.is_file():
            continue
        source = metrics.relative_to(workdir.root)
        try:
            result = read_json(metrics, "evaluation metrics")
            card["evaluation"] = {
                "split": result["split"],
                "count": result["count"],
                "stochastic": result.get("stochastic", False),
                **result["mean"],
                "source": str(source),
            }
        except (Pix2PixError, KeyError, TypeError) as e:
            return card, f"Model card: {metrics} is unreadable ({e}), so the card has no metrics."
        return card, f"Model card metrics: {source} ({result['count']} {split} images, step {step})."
    return card, (
        f"Model card: no evaluation of step {step} ({workdir.evaluation('test', step)}/ or "
        f"{workdir.evaluation('val', step).name}/), "
        "so the card has no metrics; run `pix2pix-tf evaluate` and export again to add them."
    )


def write_report(export_dir: ExportDir, report: dict) -> None:
    """Writes the report as JSON and as a Markdown summary with a table of the TFLite variants."""
    write_json(export_dir.report, report)
    lines = [
        f"# Export report: {report['workdir']} at step {report['step']}",
        "",
        f"SavedModel: {report['saved_model']['variables_bytes'] / 1e6:.2f} MB of variables for "
        f"{report['saved_model']['parameters']:,} parameters "
        f"({report['saved_model']['variables_bytes'] / report['saved_model']['parameters']:.2f} bytes each); "
        f"signatures: {', '.join(report['saved_model']['signatures'])}.",
        "",
        f"TFLite: batch fixed at 1 (resize_tensor_input for more), builtin ops only, float32 input and output "
        f"in [-1, 1]. Agreement: PSNR of each model's outputs against the Keras model's on "
        f"{report['agreement_inputs']} {_describe_inputs(report['agreement_split'])}; latency: median of "
        f"{report['latency_runs']} runs, ai-edge-litert, {report['tflite_threads']} threads, "
        f"one {report['image_size']} px image.",
        "",
        "| variant | file | size MB | PSNR vs Keras (dB) | gate (dB) | median latency (ms) | shipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in report["tflite"]:
        lines.append(
            f"| {v['variant']} | {v['file'] or '-'} | {v['bytes'] / 1e6:.2f} | {v['psnr_db']:.1f} | "
            f"{v['gate_db']:.0f} | {v['latency_ms']:.1f} | {'yes' if v['shipped'] else 'no'} |"
        )
    lines += ["", *report["notes"], ""]
    export_dir.report_text.write_text("\n".join(lines))


def _describe_inputs(split: str) -> str:
    if split == "train":
        return "inputs from the train split (no test or val split found: the model was trained on them)"
    return f"held-out inputs from the {split} split"
