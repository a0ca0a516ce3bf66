"""Export: a SavedModel for serving and TFLite models for mobile, each verified numerically.

One module per part: `saved_model` (the generator's serving module saved with its
signatures, see `pix2pix_tf.signatures`), `tflite` (conversion, and the agreement
gate and latency of each variant) and `report` (model card, report.json and
report.md). `export` runs them into a staging folder; the folder's layout is
`artifacts.exportdir`'s. With `web`, the export also holds its static web app
(`webapp.site`): the page that runs its TFLite variants in the browser.

An export replaces only a previous export (recognised by its marker), an empty
folder or nothing; see `export` for the folders it refuses. An export can also be
made from an earlier export, whose work dir may be gone: it keeps that SavedModel and
converts the TFLite variants again from the generator rebuilt from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from pix2pix_tf.artifacts.exportdir import MARKER, ExportDir
from pix2pix_tf.artifacts.files import check_replaceable, read_json, save_config, staged_output, write_json
from pix2pix_tf.artifacts.model_path import open_model
from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.config import TFLITE_VARIANTS, Config
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.export.report import carried_model_card, model_card, write_report
from pix2pix_tf.export.saved_model import copy_saved_model, count_parameters, write_saved_model
from pix2pix_tf.export.tflite import STOCHASTIC_TFLITE_NOTE, export_variants, held_out_inputs
from pix2pix_tf.inference import check_threads, generator_from_export, load_generator
from pix2pix_tf.signatures import STOCHASTIC_SIGNATURE
from pix2pix_tf.webapp.runtime import RuntimeUnavailable

__all__ = ["export"]


def _written_before_markers(folder: Path) -> bool:
    return ExportDir(folder).written_before_markers()


def _check_export_dir(out: Path, workdir: WorkDir, data_dir: Path, earlier: ExportDir | None) -> None:
    """Refuses an export folder whose replacement could destroy training runs, data or other files."""
    target, work, data = out.resolve(), workdir.root.resolve(), data_dir.resolve()
    if earlier is not None:
        source = earlier.root.resolve()
        if target == source or source in target.parents or target in source.parents:
            raise Pix2PixError(
                f"{out}: is, holds or is inside the export {earlier.root} it is made from; "
                "export into a folder of its own"
            )
    if target == work or target in work.parents:
        raise Pix2PixError(
            f"{out}: is or holds the work dir {workdir.root}; export into a folder of its own, "
            f"e.g. {workdir.root / 'export'}"
        )
    owned = workdir.entry_of(target)
    if owned is not None:
        raise Pix2PixError(
            f"{out}: is or is inside {workdir.root / owned}, which training or evaluation writes; "
            f"export into a folder of its own, e.g. {workdir.root / 'export'}"
        )
    if target == data or target in data.parents or data in target.parents:
        raise Pix2PixError(f"{out}: is, holds or is inside the dataset {data_dir}; export into a folder of its own")
    check_replaceable(out, MARKER, "pix2pix-tf export", accept=_written_before_markers)


def export(
    workdir: str | Path,
    out: str | Path,
    tflite: tuple[str, ...] = TFLITE_VARIANTS,
    stochastic: bool = False,
    data_dir: str | Path | None = None,
    agreement_inputs: int = 8,
    latency_runs: int = 10,
    tflite_threads: int | None = None,
    web: bool = False,
) -> dict:
    """Exports a trained generator as a SavedModel and TFLite models, with a report.

    `workdir` may also be an earlier export (one whose work dir is gone, or whose
    TFLite files predate today's signatures): its SavedModel is copied unchanged,
    the generator is rebuilt from it and its config (`inference.generator_from_export`),
    and the TFLite variants are converted and checked again. The report and model
    card name the earlier export's work dir and keep its metrics, with today's TFLite rows.

    Everything is written to a staging folder beside `out` and swapped in at the
    end (see `staged_output`): a failure, a full disk or a kill leaves any previous
    export at `out` as it was.

    `out` must be missing, an empty folder or a previous export (it holds MARKER, or
    is an export from before markers). Refused before anything is written: a file,
    any other non-empty folder, the work dir, a folder holding the work dir or the
    dataset or inside the dataset, and the work dir's own folders (`WorkDir` ENTRIES);
    from an earlier export, that export, a folder holding it and one inside it.
    A new folder inside the work dir, such as WORKDIR/export, is fine.

    Args:
        workdir: training work dir (config.json + checkpoints), or an earlier export dir.
        out: export directory.
        tflite: TFLite variants to convert (subset of TFLITE_VARIANTS).
        stochastic: also add the `serving_stochastic` signature (dropout on); work dirs
            only, as an earlier export's SavedModel is kept with the signatures it has.
        data_dir: dataset for int8 calibration and the agreement checks; defaults to
            the one recorded by training (for an earlier export, by the work dir its
            report names).
        agreement_inputs: held-out images compared against the Keras model.
        latency_runs: timed interpreter calls per variant.
        tflite_threads: interpreter threads for the checks and the latency (default: the available cores).
        web: also write the static web app into OUT/web (see `webapp.site.write_site`).

    Returns:
        The report (also written as report.json and report.md).

    Raises:
        Pix2PixError: a bad request, a refused `out`, an earlier export whose config does
            not describe its SavedModel, or a full disk.
        RuntimeUnavailable: with `web`, the LiteRT.js runtime could not be had; raised once the
            export (and the rest of its web app) is in place.
    """
    out = Path(out)
    unknown = set(tflite) - set(TFLITE_VARIANTS)
    if unknown:
        raise Pix2PixError(f"unknown TFLite variant(s) {sorted(unknown)}; choose from {', '.join(TFLITE_VARIANTS)}")
    tflite_threads = check_threads(tflite_threads)
    if web and not tflite:
        raise Pix2PixError("--web runs the TFLite variants in the browser: export at least one (--tflite float16)")
    source = open_model(workdir, accept=("workdir", "export"), refusal="nothing to export")
    earlier = ExportDir(source.path) if source.kind == "export" else None
    if earlier is not None and stochastic:
        raise Pix2PixError(
            f"{earlier.root}: --stochastic needs a training work dir; an export's SavedModel is kept with "
            "the signatures it has"
        )
    work = _trained_in(earlier) if earlier is not None else source.workdir
    data_dir = Path(data_dir) if data_dir else _recorded_data_dir(work, source.path)
    _check_export_dir(out, work, data_dir, earlier)
    generator, config, step = generator_from_export(earlier.root) if earlier else load_generator(work.root)
    with staged_output(
        out,
        "the export",
        marker=MARKER,
        made_by="pix2pix-tf export",
        stamp={"step": step, source.kind: str(source.path)},
        accept=_written_before_markers,
    ) as tmp:
        report = _export_into(
            ExportDir(tmp),
            generator,
            config,
            workdir=work,
            earlier=earlier,
            step=step,
            variants=tuple(tflite),
            stochastic=stochastic,
            data_dir=data_dir,
            agreement_inputs=agreement_inputs,
            latency_runs=latency_runs,
            tflite_threads=tflite_threads,
        )
        report["export_dir"] = str(out)
        write_report(ExportDir(tmp), report)
        web_failure = _write_web(ExportDir(tmp), ExportDir(out)) if web else None
    print(ExportDir(out).report_text.read_text())
    if web_failure is not None:
        raise web_failure
    return report


def _write_web(staged: ExportDir, out: ExportDir) -> Pix2PixError | None:
    """Writes the web app into the staged export; returns what went wrong rather than undo the export for it."""
    from pix2pix_tf.webapp.site import write_site

    if not staged.variants:
        return Pix2PixError(f"{out.web.root} was not written: no TFLite variant passed its gate ({out.report_text})")
    try:
        write_site(staged.root, staged.web.root, name=Path(os.path.abspath(out.root)).name)
    except RuntimeUnavailable as e:  # the rest of the web app is written
        return e
    return None


def _trained_in(earlier: ExportDir) -> WorkDir:
    """The work dir an earlier export was made from, as its report names it (it may be gone)."""
    workdir = read_json(earlier.report, "the report written by pix2pix-tf export").get("workdir")
    if not isinstance(workdir, str) or not workdir:
        raise Pix2PixError(f"{earlier.report}: names no work dir; expected the report written by pix2pix-tf export")
    return WorkDir(workdir)


def _recorded_data_dir(workdir: WorkDir, source: Path) -> Path:
    recorded = workdir.read_run_record().get("data_dir")
    if isinstance(recorded, str) and recorded and Path(recorded).is_dir():
        return Path(recorded)
    by = "training" if source == workdir.root else f"its training run ({workdir.root})"
    raise Pix2PixError(
        f"{source}: no dataset recorded by {by} (or it moved); pass --data DIR for the int8 "
        "calibration and the agreement checks"
    )


def _export_into(
    out: ExportDir,
    generator: keras.Model,
    config: Config,
    *,
    workdir: WorkDir,
    earlier: ExportDir | None,
    step: int,
    variants: tuple[str, ...],
    stochastic: bool,
    data_dir: Path,
    agreement_inputs: int,
    latency_runs: int,
    tflite_threads: int,
) -> dict:
    save_config(config, out.config)
    parameters = count_parameters(generator)
    if earlier is None:
        card, card_note = model_card(config, workdir, step, parameters)
        write_json(out.model_card, card)
        saved_model = write_saved_model(out, generator, config, stochastic=stochastic, parameters=parameters)
        notes = [card_note]
    else:
        card, card_note = carried_model_card(config, earlier, step, parameters)
        write_json(out.model_card, card)
        saved_model = copy_saved_model(earlier.saved_model, out, parameters=parameters)
        stochastic = STOCHASTIC_SIGNATURE in saved_model["signatures"]
        notes = [
            f"SavedModel: {earlier.saved_model.root}, copied unchanged; the TFLite variants were converted "
            "from the generator rebuilt with its variables.",
            card_note,
        ]
    inputs, split = held_out_inputs(config, data_dir, agreement_inputs)
    results, variant_notes = export_variants(
        out,
        generator,
        config,
        variants=variants,
        inputs=inputs,
        data_dir=data_dir,
        latency_runs=latency_runs,
        threads=tflite_threads,
    )
    stochastic_note = [STOCHASTIC_TFLITE_NOTE] if stochastic and variants else []
    return {
        "workdir": str(workdir.root),
        "step": step,
        "image_size": config.data.image_size,
        "agreement_inputs": len(inputs),
        "agreement_split": split,
        "latency_runs": latency_runs,
        "tflite_threads": tflite_threads,
        "saved_model": saved_model,
        "tflite": results,
        "notes": [*notes, *stochastic_note, *variant_notes],
        "model_card": card,
    }
