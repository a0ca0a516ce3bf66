import inspect
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pix2pix_tf.artifacts import experimentdir
from pix2pix_tf.cli import main
from pix2pix_tf.data.synthetic import synthesize
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.experiments import plan, report, runner, segmenter
from pix2pix_tf.train import train

pytestmark = pytest.mark.xdist_group("experiment_runner")  # one worker builds the module's shared fixtures


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Table 1 in quick mode with two seeds, through the CLI."""
    out = tmp_path_factory.mktemp("experiment") / "objective"
    code = main(["experiment", "objective", "--out", str(out), "--quick", "--seeds", "2"])
    assert code == 0
    return out


def test_quick_run_writes_tables_claims_and_figures(quick, capsys):
    results = json.loads((quick / "results.json").read_text())
    assert results["quick"] and "mean nothing" in results["note"]
    rows = results["tables"]["objective"]
    assert list(rows) == list(plan.PAPER["objective"])
    for name, row in rows.items():
        assert row["n"] == 2 and set(row["mean"]) == set(report.METRICS)
        seeds = results["arms"][row["arm"]]
        assert set(seeds) == {"0", "1"}
        # mean and spread are those of the two seeds' own scores
        values = [seeds[s]["class_iou"] for s in ("0", "1")]
        assert row["mean"]["class_iou"] == pytest.approx(np.mean(values))
        assert row["sd"]["class_iou"] == pytest.approx(np.std(values, ddof=1))
        assert row["paper"]["class_iou"] == plan.PAPER["objective"][name][2]
    ref = results["references"]["32"]
    gap = ref["ground_truth"]["class_iou"] - ref["mismatched"]["class_iou"]
    assert ("Warning: the segmenter's ceiling" in (quick / "results.md").read_text()) == (gap < report.USEFUL_GAP)
    assert set(ref["ground_truth"]) == set(plan.FCN_KEYS)
    assert [c["claim"] for c in results["claims"]] == [
        "L1 alone is blurry",
        "cGAN alone is sharp but artefact-prone",
        "an unconditional D ignores the input",
        "L1+cGAN scores best",
    ]
    md = (quick / "results.md").read_text()
    assert "QUICK MODE" in md and "0.66 / 0.23 / 0.17" in md and "![" in md
    # input, five arms, target; four test rows (the quick split has 3 test images)
    figure = Image.open(quick / "figures" / "objective.png")
    assert figure.size[0] > figure.size[1]
    for arm in {row["arm"] for row in rows.values()}:
        assert np.load(quick / "arms" / arm / "seed0" / experimentdir.OUTPUTS_FILE).shape == (3, 32, 32, 3)


def test_a_rerun_skips_finished_runs(quick, monkeypatch, capsys):
    before = (quick / "results.json").read_text()

    def never(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "train", never)
    runner.run_experiment("objective", quick, quick=True, seeds=2)
    assert "10 already finished" in capsys.readouterr().out
    assert json.loads(before)["tables"] == json.loads((quick / "results.json").read_text())["tables"]


def test_an_interrupted_experiment_resumes(quick, tmp_path, capsys, monkeypatch):
    out = tmp_path / "exp"
    shutil.copytree(quick, out)  # the finished quick run, with one run stopped halfway:
    arm = next(r.arm for r in plan.rows(("objective",), plan.QUICK) if r.label == "L1+cGAN")
    workdir = out / "arms" / arm.key / "seed0"
    shutil.rmtree(workdir)  # its work dir holds a checkpoint at step 3 of 6 and no scores
    train(arm.config(plan.QUICK, 0).replace(train={"steps": 3}), out / "data" / "facades32", workdir)
    capsys.readouterr()
    runner.run_experiment("objective", out, quick=True, seeds=2)
    text = capsys.readouterr().out
    assert "9 already finished" in text
    assert "resuming from step 3" in text and f"{arm.key} seed 0" in text
    assert json.loads((workdir / experimentdir.SCORES_FILE).read_text())["step"] == plan.QUICK.steps

    # Ctrl-C inside a run: the experiment stops and the run is not counted as finished.
    (workdir / experimentdir.SCORES_FILE).unlink()
    real_train, progress = runner.train, []

    def interrupted(*args, **kwargs):
        progress.append(kwargs["progress"])
        result = real_train(*args, **kwargs)
        result.interrupted = True
        return result

    monkeypatch.setattr(runner, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment("objective", out, quick=True, seeds=2, progress=False)
    assert not (workdir / experimentdir.SCORES_FILE).exists()
    text = capsys.readouterr().out
    assert progress == [False] and "resuming" not in text  # the run's own lines are off (a notebook's choice)
    assert "rerun the same command to resume" in text and f"{arm.key} seed 0" in text  # the runner's are not


def test_other_settings_in_the_same_folder_are_refused(quick):
    with pytest.raises(Pix2PixError, match="steps: was 6, now 7"):
        runner.run_experiment("objective", quick, quick=True, steps=7)


def test_segmenter_steps_reach_the_segmenter_and_are_part_of_the_settings(quick, tmp_path, monkeypatch):
    with pytest.raises(Pix2PixError, match="segmenter_steps: was 20, now 21"):
        runner.run_experiment("objective", quick, quick=True, seeds=2, segmenter_steps=21)
    asked = []

    def stop(cache_dir, data_dir, palette, image_size, steps):
        asked.append(steps)
        raise KeyboardInterrupt  # nothing after the segmenter matters here

    monkeypatch.setattr(runner, "load_or_train", stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment("objective", tmp_path / "exp", quick=True, segmenter_steps=7)
    assert asked == [7]
    assert json.loads((tmp_path / "exp" / experimentdir.EXPERIMENT_FILE).read_text())["segmenter_steps"] == 7


def test_a_claim_naming_a_missing_row_stops_the_experiment_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "CLAIMS", (*plan.CLAIMS, plan.Claim("objective", "L2 is blurrier", ("L2", "L1"))))
    with pytest.raises(Pix2PixError, match="'L2 is blurrier' names row 'L2'"):
        runner.run_experiment("objective", tmp_path / "exp", quick=True)
    assert not (tmp_path / "exp").exists()


def test_a_folder_that_is_not_an_experiment_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(Pix2PixError, match="not an experiment folder"):
        runner.run_experiment("objective", tmp_path, quick=True)
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_data_without_the_facades_palette_is_refused_before_anything_is_written(tmp_path):
    synthesize("edges2shapes", tmp_path / "shapes", count=20, size=32, seed=0)
    with pytest.raises(Pix2PixError, match="does not use the facades palette"):
        runner.run_experiment("objective", tmp_path / "exp", data_dir=tmp_path / "shapes", quick=True)
    assert not (tmp_path / "exp").exists()  # so the same --out works with the right data
    with pytest.raises(Pix2PixError, match="folder not found"):
        runner.run_experiment("objective", tmp_path / "exp", data_dir=tmp_path / "missing", quick=True)


def test_a_file_as_out_and_bad_options_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert main(["experiment", "objective", "--out", str(tmp_path / "file"), "--quick"]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "file").read_text() == "mine"
    assert main(["experiment", "objective", "--out", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "--steps must be a whole number >= 2" in capsys.readouterr().err
    # Table 3 at 64 px would map the paper's 1 and 16 to the same field.
    assert main(["experiment", "discriminator", "--out", str(tmp_path / "y"), "--image-size", "64"]) == 2
    assert "fields collapse" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_refuses_an_unknown_table(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "colour", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


def _row(**means):
    base = dict.fromkeys(report.METRICS, 0.5)
    return {"mean": {**base, **means}, "sd": dict.fromkeys(report.METRICS, 0.0), "n": 1, "image_size": 64}


def test_claims_follow_the_numbers():
    refs = {"64": {"mismatched": {"class_iou": 0.10}}}
    paper_like = {
        "L1": _row(sharpness=0.4, class_iou=0.30),
        "GAN": _row(sharpness=0.9, class_iou=0.11),
        "cGAN": _row(sharpness=0.9, class_iou=0.35),
        "L1+GAN": _row(sharpness=0.8, class_iou=0.38),
        "L1+cGAN": _row(sharpness=0.8, class_iou=0.40),
    }
    verdicts = {c["claim"]: c["held"] for c in report.claims({"objective": paper_like}, refs)}
    assert all(verdicts.values()), verdicts
    # L1 as sharp as L1+cGAN and the best score; the GAN row following its input as cGAN does.
    contrary = {
        **paper_like,
        "L1": _row(sharpness=0.9, class_iou=0.45),
        "GAN": _row(sharpness=0.9, class_iou=0.34),
    }
    verdicts = {c["claim"]: c["held"] for c in report.claims({"objective": contrary}, refs)}
    assert verdicts == {
        "L1 alone is blurry": False,
        "cGAN alone is sharp but artefact-prone": False,
        "an unconditional D ignores the input": False,
        "L1+cGAN scores best": False,
    }


def test_the_order_line_joins_rows_whose_gap_is_within_the_seed_spread():
    def row(iou, sd):
        return {**_row(class_iou=iou), "sd": {**dict.fromkeys(report.METRICS, 0.0), "class_iou": sd}, "n": 2}

    rows = {"L1": row(0.297, 0.003), "GAN": row(0.086, 0.007), "L1+GAN": row(0.302, 0.003), "cGAN": row(0.194, 0.001)}
    # 0.302 - 0.297 = 0.005 <= 0.003 + 0.003: tied; the next gaps are far outside the spreads.
    assert report.order_text(rows, "class_iou") == "L1+GAN ≈ L1 > cGAN > GAN"
    rows["L1"] = row(0.290, 0.003)  # 0.012 > 0.006: ordered
    assert report.order_text(rows, "class_iou") == "L1+GAN > L1 > cGAN > GAN"
    rows["GAN"] = {**rows["GAN"], "n": 0}  # diverged: last, and never tied
    assert report.order_text(rows, "class_iou").endswith("> GAN")


def test_table3_claims_use_the_l1_reference_row():
    rows = {
        "1x1 PixelGAN": _row(sharpness=0.5, lab_a=0.8, lab_b=0.8, class_iou=0.2),
        "16x16": _row(class_iou=0.3),
        "70x70": _row(sharpness=0.8, class_iou=0.35),
        "286x286 ImageGAN": _row(class_iou=0.25),
        "L1 alone (no D, reference)": _row(lab_a=0.6, lab_b=0.6),
    }
    verdicts = {c["claim"]: c["held"] for c in report.claims({"discriminator": rows}, {})}
    assert verdicts == {"70x70 is the sweet spot": True, "1x1 is colourful but not sharp": True}
    rows["L1 alone (no D, reference)"] = _row(lab_a=0.9, lab_b=0.9)
    rows["16x16"] = _row(class_iou=0.5)
    verdicts = {c["claim"]: c["held"] for c in report.claims({"discriminator": rows}, {})}
    assert verdicts == {"70x70 is the sweet spot": False, "1x1 is colourful but not sharp": False}


def test_every_planned_claim_has_a_check_that_takes_its_rows():
    assert set(report._CHECKS) == set(plan.CLAIMS)
    for claim, check in report._CHECKS.items():
        params = list(inspect.signature(check).parameters.values())[3:]  # after claim, rows, references
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        fixed = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        assert fixed == len(claim.rows) or (variadic and fixed <= len(claim.rows)), (claim.text, claim.rows)


def test_renamed_labels_change_only_what_the_report_shows(tmp_path, monkeypatch):
    for row_id, label in (("pixelgan", "PixelGAN (1x1)"), ("patch70", "70x70 PatchGAN"), ("l1-reference", "L1 only")):
        monkeypatch.setitem(plan.LABELS["discriminator"], row_id, label)
    table_rows = plan.rows(("discriminator",), plan.QUICK)
    # Paper-like numbers: 70x70 scores best; the PixelGAN is more colourful than L1 alone but blurrier.
    means = {
        "pixelgan": {"class_iou": 0.2, "sharpness": 0.5, "lab_a": 0.8, "lab_b": 0.8},
        "patch16": {"class_iou": 0.3},
        "patch70": {"class_iou": 0.4, "sharpness": 0.8},
        "imagegan": {"class_iou": 0.25},
        "l1-reference": {"lab_a": 0.6, "lab_b": 0.6},
    }
    scores = {row.arm.key: {0: {**dict.fromkeys(report.METRICS, 0.5), **means[row.id]}} for row in table_rows}
    images = np.zeros((3, 128, 128, 3), np.uint8)
    fcn = dict.fromkeys(plan.FCN_KEYS, 0.5)
    machine = {"cpu": "test", "cores": 1, "tensorflow": "-", "python": "-"}
    results = report.write_report(
        tmp_path,
        table_rows,
        plan.QUICK,
        scores,
        references={128: {"ground_truth": fcn, "mismatched": fcn, "test_images": 3}},
        figures={128: (images, images)},
        outputs=dict.fromkeys(scores, images),
        run_info={"command": "-", "machine": machine, "wall_seconds_this_call": 0, "arm_seconds_total": 0, "data": "-"},
    )
    table = results["tables"]["discriminator"]
    assert list(table) == ["PixelGAN (1x1)", "16x16", "70x70 PatchGAN", "286x286 ImageGAN", "L1 only"]
    assert table["PixelGAN (1x1)"]["paper"]["class_iou"] == plan.PAPER["discriminator"]["pixelgan"][2]
    verdicts = {c["claim"]: (c["held"], c["evidence"]) for c in results["claims"]}
    best = "best 70x70 PatchGAN; class IoU 70x70 PatchGAN 0.400 vs 16x16 0.300"
    assert verdicts["70x70 is the sweet spot"] == (True, best)
    assert verdicts["1x1 is colourful but not sharp"][0] is True
    assert "| PixelGAN (1x1) (here 1x1 at 128 px" in (tmp_path / "results.md").read_text()


def _published_with_diverged(*names):
    """docs/experiments_results.json with every seed of `names` (Table 1 rows) diverged."""
    from pathlib import Path

    results = json.loads((Path(__file__).parents[1] / "docs/experiments_results.json").read_text())
    rows = results["tables"]["objective"]
    for name in names:
        row = rows[name]
        row.update(n=0, diverged=row["n"], mean=dict.fromkeys(row["mean"], float("nan")))
    return results


def test_a_diverged_row_goes_last_and_the_claims_are_decided_on_the_finished_ones():
    published = _published_with_diverged()
    results = _published_with_diverged("L1+GAN")
    before = {c["claim"]: c for c in report.claims(published["tables"], published["references"])}
    after = {c["claim"]: c for c in report.claims(results["tables"], results["references"])}
    best = after["L1+cGAN scores best"]
    # Among the finished rows L1+cGAN (0.698) is ahead of cGAN (0.633); L1+GAN is named, not ranked.
    assert best["held"] is True
    assert best["evidence"] == "best L1+cGAN; class IoU L1+cGAN 0.698 vs cGAN 0.633; not ranked: L1+GAN (diverged)"
    assert {k: c for k, c in after.items() if k != "L1+cGAN scores best"} == {
        k: c for k, c in before.items() if k != "L1+cGAN scores best"
    }
    results["claims"] = list(after.values())
    assert "- **L1+cGAN scores best**: held. best L1+cGAN;" in report._markdown(results)
    # NaN sort keys compare false both ways: the published best row, diverged, broke the order.
    rows = results["tables"]["objective"]
    assert report.ranked(rows, "class_iou") == ["L1+cGAN", "cGAN", "L1", "GAN", "L1+GAN"]
    moved_first = {"L1+GAN": rows["L1+GAN"], **{k: v for k, v in rows.items() if k != "L1+GAN"}}
    assert report.ranked(moved_first, "class_iou") == ["L1+cGAN", "cGAN", "L1", "GAN", "L1+GAN"]


def test_a_claim_about_a_diverged_row_is_not_checked():
    results = _published_with_diverged("L1", "L1+cGAN")
    claims = report.claims(results["tables"], results["references"])
    verdicts = {c["claim"]: (c["held"], c["evidence"]) for c in claims}
    assert verdicts["L1 alone is blurry"] == (None, "L1, L1+cGAN diverged (no scores)")
    assert verdicts["cGAN alone is sharp but artefact-prone"] == (None, "L1, L1+cGAN diverged (no scores)")
    assert verdicts["L1+cGAN scores best"] == (None, "L1+cGAN diverged (no scores)")
    assert verdicts["an unconditional D ignores the input"][0] is True  # GAN and cGAN finished
    results["claims"] = claims
    assert "- **L1 alone is blurry**: not checked. L1, L1+cGAN diverged (no scores). Rule:" in report._markdown(results)


def test_a_later_table_joins_the_report_of_the_earlier_ones(quick):
    runner.run_experiment("generator", quick, quick=True, seeds=2)
    results = json.loads((quick / "results.json").read_text())
    assert list(results["tables"]) == ["objective", "generator"]
    # Table 2's U-Net rows are Table 1's runs, not new ones.
    assert results["tables"]["generator"]["U-Net (L1)"]["arm"] == results["tables"]["objective"]["L1"]["arm"]
    assert "U-Net beats encoder-decoder" in [c["claim"] for c in results["claims"]]
    assert {p.name for p in (quick / "figures").iterdir()} == {"objective.png", "generator.png"}
    assert "Table 1" in (quick / "results.md").read_text()


def test_a_diverged_run_is_recorded_and_the_experiment_goes_on(quick, tmp_path, monkeypatch, capsys):
    from pix2pix_tf.train import NonFiniteLossError

    # The quick run's data and its segmenter, trained on that data with these settings: this
    # test is about a diverged run, not about training another segmenter on another copy.
    done, size = experimentdir.ExperimentDir(quick), plan.QUICK.sizes["generator"]
    real_load_or_train = runner.load_or_train
    monkeypatch.setattr(
        runner,
        "load_or_train",
        lambda cache, *args, **kwargs: real_load_or_train(done.segmenter(size).root, *args, **kwargs),
    )

    def retrained(*args, **kwargs):
        raise AssertionError("the quick run's segmenter was trained again")

    monkeypatch.setattr(segmenter, "train_segmenter", retrained)
    real_train = runner.train

    def diverges(config, data, workdir, *args, **kwargs):
        if "encoder-decoder-L1+cGAN" in str(workdir):
            raise NonFiniteLossError("step 4: g_total = nan; training stopped without saving")
        return real_train(config, data, workdir, *args, **kwargs)

    monkeypatch.setattr(runner, "train", diverges)
    results = runner.run_experiment("generator", tmp_path, data_dir=done.data(size), quick=True)
    row = results["tables"]["generator"]["Encoder-decoder (L1+cGAN)"]
    assert row["n"] == 0 and row["diverged"] == 1
    assert "diverged" in (tmp_path / "results.md").read_text()
    assert results["tables"]["generator"]["U-Net (L1+cGAN)"]["n"] == 1  # the others were trained and scored
    monkeypatch.setattr(runner, "train", real_train)
    capsys.readouterr()
    # A rerun does not retry what diverged.
    runner.run_experiment("generator", tmp_path, data_dir=done.data(size), quick=True)
    assert "4 already finished" in capsys.readouterr().out
