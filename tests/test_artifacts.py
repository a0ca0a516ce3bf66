"""The on-disk layouts (artifacts/) and `open_model`, without TensorFlow.

The file names are spelled out here on purpose: they are the formats that work dirs,
exports and experiments written by earlier versions already have on disk, so a
renamed constant must fail here rather than leave old folders unreadable.
"""

import json
import re
from pathlib import Path

import pytest

from pix2pix_tf.artifacts import (
    DemoDir,
    EvalDir,
    ExperimentDir,
    ExportDir,
    SavedModelDir,
    WorkDir,
    load_config,
    open_model,
    read_json,
    resolve_config,
    save_config,
)
from pix2pix_tf.artifacts.datasets import COMBINE_MARKER, DOWNLOAD_MARKER, SYNTH_MARKER
from pix2pix_tf.artifacts.files import read_stamp, staged_output, write_json
from pix2pix_tf.config import Config, DataConfig, ModelConfig
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.shipped import DEMO_MODEL

SHIPPED = Path(__file__).resolve().parents[1] / "saved_models" / DEMO_MODEL
EVERY_KIND = (
    "a work dir (config.json + checkpoints/), an export dir, a SavedModel dir (saved_model.pb) or a .tflite file"
)


def _old_workdir(root, config=None):
    """A work dir as training has always written it: config.json, checkpoints/, run.json."""
    config = config or Config()
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints/ckpt-4.index").write_bytes(b"")
    (root / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (root / "run.json").write_text(json.dumps({"data_dir": "/data/facades", "step": 4}))
    return root


def _saved_model(root):
    root.mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"a graph")
    return root


def test_the_work_dir_layout(tmp_path):
    work = WorkDir(tmp_path)
    assert work.config == tmp_path / "config.json"
    assert work.checkpoints == tmp_path / "checkpoints"
    assert work.run_record == tmp_path / "run.json"
    assert work.logs == tmp_path / "logs" and work.train_logs == tmp_path / "logs/train"
    assert work.sample(200) == tmp_path / "samples/step_0000200.png"
    assert work.latest_sample == tmp_path / "samples/latest.png"
    assert work.evaluation("test", 60) == tmp_path / "eval/test_step60"
    assert WorkDir.holding(tmp_path / "checkpoints") == work
    assert work.entry_of(tmp_path / "eval/test_step60") == "eval"
    assert work.entry_of(tmp_path / "export") is None and work.entry_of(tmp_path.parent) is None
    assert not work.holds_run and work.read_run_record() == {}


def test_a_work_dir_written_by_earlier_versions_still_resolves(tmp_path):
    config = Config(data=DataConfig(image_size=64), model=ModelConfig(ngf=16))
    root = _old_workdir(tmp_path / "work", config)
    work = open_model(root).workdir
    assert work.holds_run and work.read_config() == config
    assert work.read_run_record()["data_dir"] == "/data/facades"
    # A rerun starts from the saved config: only the length changes.
    assert resolve_config(root, Config(), {"train": {"steps": 8}}) == config.replace(train={"steps": 8})
    with pytest.raises(Pix2PixError, match=r"config\.json does not match this command \(model\.ngf: trained with 16"):
        resolve_config(root, Config(), {"model": {"ngf": 8}})
    assert resolve_config(tmp_path / "new", Config(), {"model": {"ngf": 8}}).model.ngf == 8


def test_the_export_dir_layout(tmp_path):
    export = ExportDir(tmp_path)
    assert export.saved_model == SavedModelDir(tmp_path / "saved_model")
    assert export.saved_model.graph == tmp_path / "saved_model/saved_model.pb"
    assert export.saved_model.variables == tmp_path / "saved_model/variables"
    assert export.saved_model.config == tmp_path / "saved_model/assets/config.json"
    assert export.tflite("float16") == tmp_path / "generator_float16.tflite"
    assert export.config == tmp_path / "config.json" and export.model_card == tmp_path / "model_card.json"
    assert export.report == tmp_path / "report.json" and export.report_text == tmp_path / "report.md"
    assert export.marker == tmp_path / ".pix2pix_tf_export"
    assert not export.holds_export and not export.written_before_markers()
    # An export from before exports carried the marker: its report and SavedModel.
    _saved_model(tmp_path / "saved_model")
    (tmp_path / "report.json").write_text(json.dumps({"saved_model": {}, "tflite": []}))
    assert export.holds_export and export.written_before_markers()


def test_the_shipped_export_matches_the_export_layout():
    # Written by the exporter before the layouts moved to artifacts/.
    export = ExportDir(SHIPPED)
    assert open_model(export.root).kind == "export"
    assert export.marker.is_file() and export.model_card.is_file() and export.report_text.is_file()
    assert load_config(export.saved_model.config) == load_config(export.config)
    report = read_json(export.report, "the export report")
    assert report["saved_model"]["dir"] == export.saved_model.root.name
    for row in report["tflite"]:
        assert row["file"] == (export.tflite_name(row["variant"]) if row["shipped"] else None)
        assert export.tflite(row["variant"]).is_file() == row["shipped"]


def test_the_results_experiment_demo_and_dataset_layouts(tmp_path):
    results = EvalDir(tmp_path)
    assert (results.metrics, results.page) == (tmp_path / "metrics.json", tmp_path / "index.html")
    assert results.image("1", "output") == tmp_path / "images/1_output.png"
    assert EvalDir.image_link("1", "output") == "images/1_output.png"
    assert not results.written_before_markers()

    experiment = ExperimentDir(tmp_path)
    assert experiment.record == tmp_path / "experiment.json"
    assert experiment.data(64) == tmp_path / "data/facades64"
    assert experiment.segmenter(64).model == tmp_path / "segmenter64/segmenter.keras"
    assert experiment.segmenter(64).record == tmp_path / "segmenter64/segmenter.json"
    run = experiment.run("objective/L1", 1)
    assert run.root == tmp_path / "arms/objective/L1/seed1" and run.config == run.root / "config.json"
    assert run.scores == run.root / "scores.json" and run.outputs == run.root / "figure_outputs.npy"
    assert (experiment.results, experiment.results_text) == (tmp_path / "results.json", tmp_path / "results.md")
    assert experiment.figure("objective") == tmp_path / ExperimentDir.figure_link("objective")
    assert ExperimentDir.figure_link("objective") == "figures/objective.png"

    demo = DemoDir(tmp_path)
    assert (demo.data, demo.run.root, demo.export.root) == (tmp_path / "data", tmp_path / "run", tmp_path / "export")
    assert (demo.record, demo.summary) == (tmp_path / "demo.json", tmp_path / "summary.json")
    assert demo.untrained_results == tmp_path / "eval_step0"

    assert (SYNTH_MARKER, COMBINE_MARKER, DOWNLOAD_MARKER) == (
        ".pix2pix_tf_synth",
        ".pix2pix_tf_combine",
        ".pix2pix_tf_download",
    )


def test_open_model_says_what_each_kind_of_path_holds(tmp_path):
    work = _old_workdir(tmp_path / "work")
    export = tmp_path / "export"
    _saved_model(export / "saved_model")
    saved_model = _saved_model(tmp_path / "sm")
    (tmp_path / "m.tflite").write_bytes(b"a flatbuffer")

    assert open_model(work).kind == "workdir" and open_model(work).workdir == WorkDir(work)
    assert open_model(export).kind == "export"
    assert open_model(export).saved_model == SavedModelDir(export / "saved_model")
    assert open_model(export / "saved_model").kind == "saved_model"
    assert open_model(saved_model).saved_model == SavedModelDir(saved_model)
    assert open_model(str(tmp_path / "m.tflite")).kind == "tflite"
    with pytest.raises(ValueError, match="is a .tflite file, not a work dir"):
        _ = open_model(tmp_path / "m.tflite").workdir


def test_open_model_refuses_what_holds_no_model(tmp_path):
    with pytest.raises(Pix2PixError, match=r"missing: no such file or folder$"):
        open_model(tmp_path / "missing")
    with pytest.raises(Pix2PixError, match=r"missing\.tflite: no such file or folder$"):
        open_model(tmp_path / "missing.tflite")
    (tmp_path / "data").mkdir()
    with pytest.raises(Pix2PixError) as caught:
        open_model(tmp_path / "data")
    assert str(caught.value) == f"{tmp_path / 'data'}: not a model: expected {EVERY_KIND}"
    # A config.json without checkpoints/ is no work dir (an export dir has one too).
    save_config(Config(), tmp_path / "data/config.json")
    with pytest.raises(Pix2PixError, match="data: not a model: expected a work dir"):
        open_model(tmp_path / "data")


def test_open_model_names_a_kind_the_caller_cannot_use(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"a flatbuffer")
    with pytest.raises(Pix2PixError) as caught:
        open_model(tmp_path / "m.tflite", accept=("workdir", "export", "saved_model"), refusal="nothing to serve")
    assert str(caught.value) == (
        f"{tmp_path / 'm.tflite'}: nothing to serve (a .tflite file): expected a work dir "
        "(config.json + checkpoints/), an export dir or a SavedModel dir (saved_model.pb)"
    )
    _saved_model(tmp_path / "export/saved_model")
    with pytest.raises(Pix2PixError, match=r"export: not a model \(an export dir\): expected a work dir"):
        open_model(tmp_path / "export", accept=("workdir",))


def test_json_files_are_replaced_whole_and_read_with_a_clear_error(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert read_json(tmp_path / "a.json", "a record") == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left
    (tmp_path / "b.json").write_text("[1]")
    with pytest.raises(Pix2PixError, match=r"b\.json: expected a record \(a JSON object\), found list"):
        read_json(tmp_path / "b.json", "a record")


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_a_staged_output_that_cannot_be_created_is_one_clear_error(tmp_path, where):
    from pix2pix_tf.artifacts.files import staged_output

    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "sub" if where == "under_a_file" else Path("/proc/no_such_process/out")
    reason = f"{tmp_path / 'a_file'} is not a folder" if where == "under_a_file" else "No such file or directory"
    with pytest.raises(Pix2PixError, match=f"cannot write the export there \\({re.escape(reason)}\\)"):
        with staged_output(out, "the export"):
            raise AssertionError("nothing is yielded when the folder cannot be made")
    assert (tmp_path / "a_file").read_text() == "x"


def test_a_markers_stamp_reads_back_and_a_missing_or_damaged_one_reads_as_empty(tmp_path):
    with staged_output(tmp_path / "out", "a dataset", marker=SYNTH_MARKER, stamp={"count": 10, "size": 32}) as stage:
        (stage / "train").mkdir()
    stamp = read_stamp(tmp_path / "out", SYNTH_MARKER)
    assert stamp["count"] == 10 and stamp["size"] == 32 and "version" in stamp
    assert read_stamp(tmp_path / "nowhere", SYNTH_MARKER) == {}
    for damaged in ("{not json", "[1, 2]", ""):
        (tmp_path / "out" / SYNTH_MARKER).write_text(damaged)
        assert read_stamp(tmp_path / "out", SYNTH_MARKER) == {}
