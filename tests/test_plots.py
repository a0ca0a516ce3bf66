"""What a reader of a run sees: the logged scalars read back, the loss panels, D's patch map."""

import contextlib
import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from pix2pix_tf import plots  # noqa: E402
from pix2pix_tf.artifacts import WorkDir  # noqa: E402
from pix2pix_tf.data import eval_dataset, find_pairs  # noqa: E402
from pix2pix_tf.inference import load_discriminator  # noqa: E402
from pix2pix_tf.models import build_models, patch_probabilities, receptive_field  # noqa: E402
from pix2pix_tf.train import train  # noqa: E402

pytestmark = pytest.mark.xdist_group("plots")  # one worker builds the module's shared fixtures


@pytest.fixture(scope="module")
def logged_run(tiny_config, tiny_data, tmp_path_factory):
    """tiny_config for 8 steps, logging every 2 (decay over the last 6), then resumed to 10; silently."""
    run = tmp_path_factory.mktemp("logged") / "run"
    config = tiny_config.replace(train={"steps": 8, "log_every": 2, "decay_steps": 6, "steps_per_call": 1})
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train(config, tiny_data, run, progress=False)
        train(config.replace(train={"steps": 10}), tiny_data, run, progress=False)  # a resume
    return run, config, printed.getvalue()


def test_read_scalars_gives_every_logged_step_once_in_order_across_a_resume(logged_run):
    run, config, _ = logged_run
    scalars = WorkDir(run).read_scalars()
    assert {"g_gan", "g_l1", "d_total", "learning_rate"} <= set(scalars)
    steps, rates = scalars["learning_rate"]
    assert steps == [2, 4, 6, 8, 10]  # two event files, one per call
    # The rate each logged step used: constant, then linear to zero over the last 6 of the run's total
    # (8 for the first call; the resume asked for 10).
    lr = config.train.learning_rate
    expected = [lr * min(1.0, ((8 if s <= 8 else 10) - (s - 1)) / 6) for s in steps]
    assert np.allclose(rates, expected, rtol=1e-5), (rates, expected)
    assert all(math.isfinite(v) for _, values in scalars.values() for v in values)


def test_read_scalars_of_a_run_that_logged_nothing_is_empty(tmp_path):
    (tmp_path / "logs" / "train").mkdir(parents=True)
    assert WorkDir(tmp_path).read_scalars() == {}


def test_training_with_progress_off_prints_nothing_not_even_the_precision_or_the_resume(logged_run):
    assert logged_run[2] == ""


def test_plot_losses_marks_log_2_on_the_adversarial_panels_only(logged_run):
    scalars = WorkDir(logged_run[0]).read_scalars()
    fig = plots.plot_losses(scalars)
    panels = {ax.get_title().split(":")[0].split(" ")[0]: ax for ax in fig.axes if ax.get_title()}
    for tag in ("d_total", "g_gan"):
        assert any(np.allclose(line.get_ydata(), math.log(2)) for line in panels[tag].get_lines()), tag
    assert not any(np.allclose(line.get_ydata(), math.log(2)) for line in panels["g_l1"].get_lines())
    assert list(panels["d_total"].get_lines()[0].get_xdata()) == scalars["d_total"][0]
    plt.close(fig)


def test_the_trained_discriminator_is_restored_and_its_patch_map_sees_the_input(trained_workdir, tiny_data):
    discriminator, config, step = load_discriminator(trained_workdir)
    assert step == config.train.steps
    _, untrained = build_models(config.replace(train={"precision": "float32"}), seed=123)
    trained = [w.numpy() for w in discriminator.weights]
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(trained, untrained.weights))

    source, target, _ = next(iter(eval_dataset(find_pairs(tiny_data, "test", config.data), config.data, 2)))
    p = patch_probabilities(discriminator, source, target)
    side = discriminator.output.shape[1]
    assert p.shape == (2, side, side) and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    # Conditional: the same image judged against another input gets another map.
    assert not np.allclose(p, patch_probabilities(discriminator, -source, target))

    fig, ax = plt.subplots()
    plots.show_patch_map(ax, target[0].numpy(), p[0], f"{receptive_field(discriminator)} px field")
    overlay = ax.get_images()[1]
    assert np.array_equal(overlay.get_array(), p[0]) and overlay.get_extent() == [0, 32, 32, 0]
    assert f"mean P(real) {p[0].mean():.2f}" in ax.get_title()
    plt.close(fig)


def test_show_images_draws_each_image_under_its_title_at_the_asked_size():
    fig = plots.show_images({"a": np.zeros((8, 8, 3), np.uint8), "b": -np.ones((8, 8, 1), np.float32)}, inches=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"] and fig.get_size_inches()[0] == 6
    assert fig.axes[1].get_images()[0].get_array().shape == (8, 8)  # grey squeezed, [-1, 1] -> [0, 1]
    assert float(fig.axes[1].get_images()[0].get_array().max()) == 0.0
    plt.close(fig)


def test_plot_losses_can_add_a_running_mean_to_the_losses_but_not_to_the_rate():
    steps = list(range(1, 11))
    scalars = {"g_gan": (steps, [float(s % 2) for s in steps]), "learning_rate": (steps, [1e-3] * 10)}
    fig = plots.plot_losses(scalars, tags=("g_gan", "learning_rate"), window=2)
    gan, rate = fig.axes[:2]
    raw, mean, balance = gan.get_lines()
    assert np.allclose(mean.get_ydata(), 0.5) and len(mean.get_xdata()) == 9  # the mean of each 2 neighbours
    assert np.allclose(balance.get_ydata(), math.log(2))
    assert len(rate.get_lines()) == 1
    plt.close(fig)


def test_show_sample_grid_shows_a_saved_grid_with_its_columns_named(trained_workdir):
    sample = WorkDir(trained_workdir).latest_sample
    fig = plots.show_sample_grid(sample, title="step 60")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["input", "output", "target"]
    shown = ax.get_images()[0].get_array()
    with Image.open(sample) as image:
        assert shown.shape[:2] == (image.height, image.width)
    assert fig.get_size_inches()[0] == 6.4 and ax.get_title() == "step 60"
    plt.close(fig)
