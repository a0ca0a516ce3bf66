"""The export's model card and its report (report.json for programs, report.md for people)."""

from __future__ import annotations

import datetime

from pix2pix_tf.artifacts.evaldir import EvalDir
from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.config import Config
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.export.tflite import declared_signatures
from pix2pix_tf.signatures import DEFAULT_SIGNATURE, UINT8_SIGNATURE


def model_card(config: Config, workdir: WorkDir, step: int, params: int) -> tuple[dict, str]:
    """The model card, with the evaluation of the exported step if there is one.

    Returns:
        (card, a note for the report on where its metrics come from).
    """
    evaluation, note = _evaluation(workdir, step)
    return _card(config, step, params, evaluation), note


def carried_model_card(config: Config, source: ExportDir, step: int, params: int) -> tuple[dict, str]:
    """The model card of an export made from another export (`source`): made afresh but for its metrics.

    The metrics are `source`'s card's: they describe the same weights (its SavedModel is copied).

    Returns:
        (card, a note for the report on where its metrics come from).
    """
    evaluation = read_json(source.model_card, "the model card written by pix2pix-tf export").get("evaluation")
    card = _card(config, step, params, evaluation)
    if evaluation is None:
        return card, f"Model card: {source.model_card} has no metrics, so this one has none."
    return card, f"Model card metrics: carried over from {source.model_card} (same weights, step {step})."


def _card(config: Config, step: int, params: int, evaluation: dict | None) -> dict:
    card = {
        "model": "pix2pix U-Net generator (Isola et al., CVPR 2017)",
        "input": {
            "size": [config.data.image_size, config.data.image_size],
            "channels": config.data.channels,
            "range": "[-1, 1] for serving_default; uint8 for translate_image; encoded images for translate_bytes",
        },
        "direction": config.data.direction,
        # What every .tflite file of the export takes and returns (report.json lists each file's).
        "tflite_signatures": declared_signatures(config.data.image_size, config.data.channels),
        "steps_trained": step,
        "parameters": params,
        "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if evaluation is not None:
        card["evaluation"] = evaluation
    return card


def _evaluation(workdir: WorkDir, step: int) -> tuple[dict | None, str]:
    """The work dir's evaluation of `step` as the card states it (None if there is none), and a note on it."""
    # `evaluate` writes to the work dir's evaluation folder of a split and step by
    # default; metrics of any other step describe another model.
    for split in ("test", "val"):
        metrics = EvalDir(workdir.evaluation(split, step)).metrics
        if not metrics.is_file():
            continue
        source = metrics.relative_to(workdir.root)
        try:
            result = read_json(metrics, "evaluation metrics")
            evaluation = {
                "split": result["split"],
                "count": result["count"],
                "stochastic": result.get("stochastic", False),
                **result["mean"],
                "source": str(source),
            }
        except (Pix2PixError, KeyError, TypeError) as e:
            return None, f"Model card: {metrics} is unreadable ({e}), so the card has no metrics."
        return evaluation, f"Model card metrics: {source} ({result['count']} {split} images, step {step})."
    return None, (
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
        f"TFLite: batch fixed at 1 (resize_tensor_input for more), builtin ops only; every file has two "
        f"signatures, {DEFAULT_SIGNATURE} (float32 in [-1, 1]) and {UINT8_SIGNATURE} (uint8 pixels). "
        f"Agreement: PSNR against the Keras model's outputs on {report['agreement_inputs']} "
        f"{_describe_inputs(report['agreement_split'])}: {DEFAULT_SIGNATURE}'s outputs, and {UINT8_SIGNATURE}'s "
        f"for the same inputs as pixels against the Keras outputs through to_uint8 (with the largest difference "
        f"in levels); a variant ships if both reach its gate. Latency ({DEFAULT_SIGNATURE}): median of "
        f"{report['latency_runs']} runs, ai-edge-litert, {report['tflite_threads']} threads, "
        f"one {report['image_size']} px image.",
        "",
        f"| variant | file | size MB | {DEFAULT_SIGNATURE} PSNR (dB) | {UINT8_SIGNATURE} PSNR (dB) "
        "| max level difference | gate (dB) | median latency (ms) | shipped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report["tflite"]:
        lines.append(
            f"| {v['variant']} | {v['file'] or '-'} | {v['bytes'] / 1e6:.2f} | {_db(v['psnr_db'])} | "
            f"{_db(v['uint8_psnr_db'])} | {v['uint8_max_levels']} | {v['gate_db']:.0f} | {v['latency_ms']:.1f} | "
            f"{'yes' if v['shipped'] else 'no'} |"
        )
    if report["tflite"]:
        lines += ["", "Signatures (key: inputs -> outputs, dtype and shape):", ""]
        lines += [
            f"- {v['file'] or v['variant'] + ' (not shipped)'}: {_describe_signatures(v['signatures'])}"
            for v in report["tflite"]
        ]
    lines += ["", *report["notes"], ""]
    export_dir.report_text.write_text("\n".join(lines))


def _db(psnr: float | None) -> str:
    return "identical" if psnr is None else f"{psnr:.1f}"


def _describe_signatures(signatures: dict) -> str:
    def tensors(named: dict) -> str:
        return ", ".join(f"{name} {t['dtype']} {t['shape']}" for name, t in named.items())

    return "; ".join(f"{key}: {tensors(s['inputs'])} -> {tensors(s['outputs'])}" for key, s in signatures.items())


def _describe_inputs(split: str) -> str:
    if split == "train":
        return "inputs from the train split (no test or val split found: the model was trained on them)"
    return f"held-out inputs from the {split} split"
