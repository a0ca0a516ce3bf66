"""The experiment's outcome: results.json, results.md (beside the paper's tables) and figures.

Each of the paper's claims is checked against the numbers with a stated rule and
reported in one line: held or not, with the numbers, and whether the difference is
smaller than the seed-to-seed spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pix2pix_tf.artifacts.experimentdir import ExperimentDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.experiments import plan

FIGURE_IMAGES = 4  # test inputs per figure, the same for every arm
METRICS = (*plan.FCN_KEYS, "l1", "psnr", "ssim", "sharpness", "lab_L", "lab_a", "lab_b")
_TITLES = {
    "objective": "Table 1: objective (labels -> photo)",
    "generator": "Table 2: generator architecture",
    "discriminator": "Table 3: discriminator receptive field (L1+cGAN)",
}
USEFUL_GAP = 0.1  # class IoU between the real photos and mismatched labels below which the score says little
VERDICTS = {True: "held", False: "did not hold", None: "not checked"}  # a claim's "held": None if a row diverged
QUICK_NOTE = "QUICK MODE: tiny models trained for a few steps to test the machinery; these numbers mean nothing."


def _stats(per_seed: dict) -> dict:
    # Seeds whose training diverged (NaN/Inf) have no scores; they are counted, not averaged.
    good = [s for s in per_seed.values() if "diverged" not in s]
    values = {m: [s[m] for s in good] for m in METRICS}
    return {
        "mean": {m: float(np.mean(v)) if v else float("nan") for m, v in values.items()},
        # Sample standard deviation over seeds (0 with one seed).
        "sd": {m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()},
        "n": len(good),
        "diverged": len(per_seed) - len(good),
    }


def _compare(rows: dict, a: str, b: str, metric: str) -> tuple[bool, str, bool]:
    """(a's mean > b's, "a 0.12 vs b 0.08", whether the gap is within the seeds' spread)."""
    ra, rb = rows[a], rows[b]
    ma, mb = ra["mean"][metric], rb["mean"][metric]
    spread = ra["sd"][metric] + rb["sd"][metric]
    return ma > mb, f"{a} {ma:.3f} vs {b} {mb:.3f}", abs(ma - mb) <= spread and spread > 0


def _claim(claim: str, rule: str, held: bool, evidence: list[str], within: bool) -> dict:
    return {
        "claim": claim,
        "rule": rule,
        "held": bool(held),
        "evidence": "; ".join(evidence),
        "within_seed_spread": bool(within),
    }


def _finished(rows: dict) -> dict:
    """The rows with scores: a row whose every seed diverged has none (NaN means)."""
    return {name: row for name, row in rows.items() if row["n"] > 0}


def ranked(rows: dict, metric: str) -> list[str]:
    """Row names by `metric`, best first; rows that diverged (no scores) last, in table order."""
    finished = _finished(rows)
    best_first = sorted(finished, key=lambda r: finished[r]["mean"][metric], reverse=True)
    return best_first + [name for name in rows if name not in finished]


def order_text(rows: dict, metric: str) -> str:
    """The rows by `metric`, best first, as "A > B ≈ C > D": ≈ joins neighbours whose gap is
    within their seeds' spread (the claims' rule), so no order between them is claimed."""
    order = ranked(rows, metric)
    finished = _finished(rows)
    text = order[0]
    for better, name in zip(order, order[1:]):
        tied = better in finished and name in finished and _compare(rows, better, name, metric)[2]
        text += (" ≈ " if tied else " > ") + name
    return text


def _unchecked(claim: str, rule: str, diverged: list[str], why: str = "diverged (no scores)") -> dict:
    return {
        "claim": claim,
        "rule": rule,
        "held": None,
        "evidence": f"{', '.join(diverged)} {why}",
        "within_seed_spread": False,
    }


def _needs(rows: dict, checked: dict) -> dict:
    """`checked`, or the claim marked not checked if a row it compares (every one of `rows`) diverged."""
    diverged = [name for name in rows if name not in _finished(rows)]
    return _unchecked(checked["claim"], checked["rule"], diverged) if diverged else checked


def _best_claim(claim: str, rule: str, rows: dict, claimed: str) -> dict:
    """`claimed` has the highest class IoU of the rows that finished; those that diverged are named, not ranked.

    The gap shown is to the best other row (or to the best, if not it).
    """
    finished = _finished(rows)
    diverged = [name for name in rows if name not in finished]
    if claimed not in finished:
        return _unchecked(claim, rule, [claimed])
    if len(finished) < 2:
        return _unchecked(claim, rule, diverged, "diverged: no other row to compare with")
    order = ranked(finished, "class_iou")
    other = order[1] if order[0] == claimed else order[0]
    _, text, within = _compare(rows, claimed, other, "class_iou")
    evidence = [f"best {order[0]}; class IoU {text}"]
    if diverged:
        evidence.append(f"not ranked: {', '.join(diverged)} (diverged)")
    return _claim(claim, rule, order[0] == claimed, evidence, within)


# Each check takes the claim, the rows it names (by label, in table order), the references,
# then the labels of `claim.rows` in that order; the labels only name rows in the evidence.


def _l1_is_blurry(claim: plan.Claim, rows: dict, references: dict, l1: str, l1_cgan: str) -> dict:
    held, text, within = _compare(rows, l1_cgan, l1, "sharpness")
    rule = "sharpness ratio of L1 < L1+cGAN's (1.0 = as sharp as the real photos)"
    return _needs(rows, _claim(claim.text, rule, held, [f"sharpness {text}"], within))


def _cgan_is_sharp(claim: plan.Claim, rows: dict, references: dict, l1: str, cgan: str, l1_cgan: str) -> dict:
    sharp, s_text, s_within = _compare(rows, cgan, l1, "sharpness")
    worse, w_text, w_within = _compare(rows, l1_cgan, cgan, "class_iou")
    rule = "sharpness of cGAN > L1's, and class IoU of cGAN < L1+cGAN's"
    evidence = [f"sharpness {s_text}", f"class IoU {w_text}"]
    return _needs(rows, _claim(claim.text, rule, sharp and worse, evidence, s_within or w_within))


def _gan_ignores_input(claim: plan.Claim, rows: dict, references: dict, gan: str, cgan: str) -> dict:
    size = next(iter(rows.values()))["image_size"]
    mismatched = references[str(size)]["mismatched"]["class_iou"]
    gan_iou, cgan_iou = rows[gan]["mean"]["class_iou"], rows[cgan]["mean"]["class_iou"]
    rule = "class IoU of GAN is closer to the mismatched-labels reference than to cGAN's"
    held = abs(gan_iou - mismatched) < abs(cgan_iou - gan_iou)
    evidence = [f"class IoU {gan} {gan_iou:.3f}, mismatched labels {mismatched:.3f}, {cgan} {cgan_iou:.3f}"]
    within = abs(cgan_iou - gan_iou) <= rows[gan]["sd"]["class_iou"] + rows[cgan]["sd"]["class_iou"]
    return _needs(rows, _claim(claim.text, rule, held, evidence, within))


def _l1_cgan_is_best(claim: plan.Claim, rows: dict, references: dict, l1_cgan: str, *others: str) -> dict:
    return _best_claim(claim.text, "L1+cGAN has the highest class IoU of Table 1", rows, l1_cgan)


def _unet_beats_encoder_decoder(
    claim: plan.Claim, rows: dict, references: dict, unet_l1: str, ed_l1: str, unet_cgan: str, ed_cgan: str
) -> dict:
    l1, l1_text, l1_within = _compare(rows, unet_l1, ed_l1, "class_iou")
    gan, gan_text, gan_within = _compare(rows, unet_cgan, ed_cgan, "class_iou")
    rule = "class IoU of U-Net > encoder-decoder's, with L1 and with L1+cGAN"
    evidence = [f"class IoU {l1_text}", gan_text]
    return _needs(rows, _claim(claim.text, rule, l1 and gan, evidence, l1_within or gan_within))


def _patch70_is_best(claim: plan.Claim, rows: dict, references: dict, patch70: str, *others: str) -> dict:
    return _best_claim(claim.text, "the 70x70 analogue has the highest class IoU of Table 3", rows, patch70)


def _pixelgan_is_colourful(
    claim: plan.Claim, rows: dict, references: dict, pixelgan: str, patch70: str, l1: str
) -> dict:
    def colour(row):
        return (rows[row]["mean"]["lab_a"] + rows[row]["mean"]["lab_b"]) / 2

    not_sharp, s_text, s_within = _compare(rows, patch70, pixelgan, "sharpness")
    rule = "mean a/b histogram intersection of 1x1 > L1 alone's, and sharpness of 1x1 < 70x70's"
    evidence = [f"a/b intersection 1x1 {colour(pixelgan):.3f} vs L1 alone {colour(l1):.3f}", f"sharpness {s_text}"]
    return _needs(rows, _claim(claim.text, rule, colour(pixelgan) > colour(l1) and not_sharp, evidence, s_within))


_CHECKS = {
    plan.L1_IS_BLURRY: _l1_is_blurry,
    plan.CGAN_IS_SHARP: _cgan_is_sharp,
    plan.GAN_IGNORES_INPUT: _gan_ignores_input,
    plan.L1_CGAN_IS_BEST: _l1_cgan_is_best,
    plan.UNET_BEATS_ENCODER_DECODER: _unet_beats_encoder_decoder,
    plan.PATCH70_IS_BEST: _patch70_is_best,
    plan.PIXELGAN_IS_COLOURFUL: _pixelgan_is_colourful,
}
# Results written before rows had ids name rows by label only: the labels they used, frozen
# here so that renaming a label in the plan does not change how they read.
_IDS_OF_OLD_LABELS = {
    **{objective: objective for objective in ("L1", "GAN", "cGAN", "L1+GAN", "L1+cGAN")},
    "Encoder-decoder (L1)": "encoder-decoder-L1",
    "Encoder-decoder (L1+cGAN)": "encoder-decoder-L1+cGAN",
    "U-Net (L1)": "unet-L1",
    "U-Net (L1+cGAN)": "unet-L1+cGAN",
    "1x1 PixelGAN": "pixelgan",
    "16x16": "patch16",
    "70x70": "patch70",
    "286x286 ImageGAN": "imagegan",
    "L1 alone (no D, reference)": "l1-reference",
}


def _row_id(label: str, row: dict) -> str:
    return row["id"] if "id" in row else _IDS_OF_OLD_LABELS[label]


def claims(tables: dict[str, dict], references: dict) -> list[dict]:
    """Checks each of the paper's claims (`plan.CLAIMS`) that the tables at hand can speak to.

    Args:
        tables: per table, its rows by label, as `write_report` writes them.
        references: per image size (a string), the ground-truth and mismatched-label scores.

    Returns:
        Per claim: its text, rule, whether it held (None if a row it needs diverged),
        the evidence, and whether the gap is within the seeds' spread.
    """
    out = []
    for claim in plan.CLAIMS:
        table = tables.get(claim.table)
        if not table:
            continue
        labels = {_row_id(label, row): label for label, row in table.items()}
        names = [labels[row_id] for row_id in claim.rows]
        rows = {label: row for label, row in table.items() if label in names}
        checked = _CHECKS[claim](claim, rows, references, *names)
        checked["single_seed"] = all(row["n"] <= 1 for row in table.values())
        out.append(checked)
    return out


def _fmt(row: dict, metric: str) -> str:
    if row["n"] == 0:
        return "diverged"
    mean, sd = row["mean"][metric], row["sd"][metric]
    digits = 2 if metric == "psnr" else 3
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if row["n"] > 1 else f"{mean:.{digits}f}"


def _label(name: str, row: dict, with_note: bool) -> str:
    parts = [row["note"]] if with_note and row["note"] else []
    if row.get("diverged"):
        parts.append(f"{row['diverged']} of {row['n'] + row['diverged']} seeds diverged")
    return f"{name} ({'; '.join(parts)})" if parts else name


def _markdown(results: dict) -> str:
    s = results["settings"]
    lines = ["# pix2pix ablations, rerun offline", ""]
    if s["quick"]:
        lines += [f"**{QUICK_NOTE}**", ""]
    lines += [
        f"Data: {results['run']['data']}; labels -> photo. {s['steps']} steps per run at batch {s['batch_size']}, "
        f"ngf {s['ngf']}, ndf {s['ndf']}, float32; each table's seeds per arm are given with it "
        "(mean ± sample standard deviation over seeds). The paper's numbers are FCN-scores on Cityscapes at 256 px: "
        "compare orders and gaps, not values.",
        "",
        "Score: a segmentation network trained on the real training photos (the FCN-score analogue) is applied to "
        "each arm's generated test photos and compared with the label maps they were generated from. "
        "*Ground truth* is the real test photos (the ceiling); *mismatched labels* scores the real photos against "
        "another image's label map (what ignoring the input earns). Generated photos are deterministic "
        "(dropout off, batch norm with its moving statistics), PNG-exact in memory, at the training size.",
        "",
    ]
    for table, rows in results["tables"].items():
        lines += [f"## {_TITLES[table]}", ""]
        size = next(iter(rows.values()))["image_size"]
        ref = results["references"][str(size)]
        n = max(row["n"] + row.get("diverged", 0) for row in rows.values())
        lines += [
            f"{size} px, {ref['test_images']} test images, {n} seed{'s' if n > 1 else ''} per row.",
            "",
            "| row | per-pixel acc | per-class acc | class IoU | paper (pixel / class / IoU) |",
            "|---|---|---|---|---|",
        ]
        for name, row in rows.items():
            paper = plan.PAPER[table].get(_row_id(name, row))
            paper_text = " / ".join(f"{v:.2f}" for v in paper) if paper else "–"
            scores = " | ".join(_fmt(row, m) for m in plan.FCN_KEYS)
            lines.append(f"| {_label(name, row, True)} | {scores} | {paper_text} |")
        gt, mm = ref["ground_truth"], ref["mismatched"]
        lines.append(
            "| ground truth (real photos) | "
            + " | ".join(f"{gt[m]:.3f}" for m in plan.FCN_KEYS)
            + " | "
            + " / ".join(f"{v:.2f}" for v in plan.PAPER_GROUND_TRUTH)
            + " |"
        )
        lines.append(
            "| mismatched labels (chance-like) | " + " | ".join(f"{mm[m]:.3f}" for m in plan.FCN_KEYS) + " | – |"
        )
        if gt["class_iou"] - mm["class_iou"] < USEFUL_GAP:
            lines += [
                "",
                f"**Warning: the segmenter's ceiling (class IoU {gt['class_iou']:.3f}) is within {USEFUL_GAP} of "
                f"what mismatched labels earn ({mm['class_iou']:.3f}): differences between rows mean little.**",
            ]
        lines += [
            "",
            "| row | L1 | PSNR dB | SSIM | sharpness (1 = real) | Lab ∩ L | a | b |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in rows.items():
            metrics = ("l1", "psnr", "ssim", "sharpness", "lab_L", "lab_a", "lab_b")
            lines.append(f"| {_label(name, row, False)} | " + " | ".join(_fmt(row, m) for m in metrics) + " |")
        lines += ["", f"![{_TITLES[table]}]({ExperimentDir.figure_link(table)})", ""]
    lines += ["## The paper's claims, checked", ""]
    for c in results["claims"]:
        verdict = VERDICTS[c["held"]]
        spread = " (the gap is within the seed-to-seed spread)" if c["within_seed_spread"] else ""
        if c.get("single_seed") and c["held"] is not None:
            spread = " (one seed per row: the seed-to-seed spread is not measured)"
        lines.append(f"- **{c['claim']}**: {verdict}{spread}. {c['evidence']}. Rule: {c['rule']}.")
    lines += [
        "",
        "Paper, Fig. 7 (Lab histogram intersection, L / a / b): "
        + "; ".join(f"{k} {' / '.join(f'{v:.2f}' for v in vals)}" for k, vals in plan.PAPER_LAB.items())
        + ".",
        "",
    ]
    run = results["run"]
    m = run["machine"]
    lines += [
        "## Run",
        "",
        f"- Command: `{run['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, TensorFlow {m['tensorflow']}, Python {m['python']}",
        f"- Training and scoring time summed over runs: {run['arm_seconds_total'] / 60:.1f} min; "
        f"wall time of the last call: {run['wall_seconds_this_call'] / 60:.1f} min",
        "",
    ]
    return "\n".join(lines)


def _figure(path: Path, title: str, names: list[str], inputs, targets, outputs: list[np.ndarray]) -> None:
    # A Figure of its own, not pyplot: no backend is switched in the caller's process (a notebook's).
    from matplotlib.figure import Figure

    columns = ["input", *names, "target"]
    n = min(FIGURE_IMAGES, len(inputs))
    fig = Figure(figsize=(1.6 * len(columns), 1.7 * n + 0.4))
    axes = fig.subplots(n, len(columns), squeeze=False)
    for r in range(n):
        for c, images in enumerate([inputs, *outputs, targets]):
            ax = axes[r][c]
            ax.imshow(images[r])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _previous_results(out: Path) -> dict:
    try:
        return read_json(ExperimentDir(out).results, "the experiment's earlier results")
    except Pix2PixError:  # none yet, or damaged: only this call's tables are reported
        return {}


def write_report(out: Path, table_rows, settings, scores, references, figures, outputs, run_info) -> dict:
    """Writes results.json, results.md and figures/{table}.png; returns the results.

    Args:
        out: the experiment folder.
        table_rows: the plan's rows.
        settings: the plan's settings.
        scores: per arm key, per seed, the arm's scores.
        references: per image size, the ground-truth and mismatched-label scores.
        figures: per image size, (test inputs, test targets) as uint8.
        outputs: per arm key, seed 0's first test outputs.
        run_info: command, machine and times.
    """
    tables: dict[str, dict] = {}
    for row in table_rows:
        tables.setdefault(row.table, {})[row.label] = {
            "id": row.id,
            "arm": row.arm.key,
            "image_size": row.arm.image_size,
            "note": row.note,
            "paper": dict(zip(plan.FCN_KEYS, plan.PAPER[row.table].get(row.id, ()), strict=False)),
            **_stats(scores[row.arm.key]),
        }
    references = {str(size): ref for size, ref in references.items()}
    # Tables an earlier call of this experiment folder finished stay in the report.
    previous = _previous_results(out)
    for table, rows in previous.get("tables", {}).items():
        if table not in tables:
            tables[table] = rows
            for row in rows.values():
                size = str(row["image_size"])
                references.setdefault(size, previous["references"][size])
    tables = {t: tables[t] for t in plan.TABLES if t in tables}
    results = {
        "quick": settings.quick,
        "note": QUICK_NOTE if settings.quick else "",
        "settings": settings.to_dict(),
        "references": references,
        "tables": tables,
        "claims": claims(tables, references),
        "arms": {**previous.get("arms", {}), **{k: {str(s): v for s, v in per.items()} for k, per in scores.items()}},
        "run": run_info,
    }
    folder = ExperimentDir(out)
    figures_dir = folder.figures
    figures_dir.mkdir(exist_ok=True)
    for table, rows in tables.items():
        if table not in {row.table for row in table_rows}:
            continue  # carried over with its figure
        size = next(iter(rows.values()))["image_size"]
        inputs, targets = figures[size]
        _figure(
            folder.figure(table),
            _TITLES[table] + (" (quick mode: meaningless)" if settings.quick else ""),
            list(rows),
            inputs,
            targets,
            [outputs[row["arm"]] for row in rows.values()],
        )
    for stale in figures_dir.glob("*.png"):
        if stale.stem not in tables:
            stale.unlink()
    write_json(folder.results, results)
    folder.results_text.write_text(_markdown(results))
    return results
