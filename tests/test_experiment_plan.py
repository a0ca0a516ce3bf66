import pytest

from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.experiments import plan
from pix2pix_tf.models import build_models, receptive_field


def test_fields_keep_the_papers_share_of_the_image():
    assert [plan.scaled_field(f, 256) for f in plan.PAPER_FIELDS] == [1, 16, 70, 286]
    # 128 px: 34/128 = 0.27 like 70/256, 142/128 = 1.1 like 286/256; no 8 px PatchGAN exists, 16 is nearest.
    assert [plan.scaled_field(f, 128) for f in plan.PAPER_FIELDS] == [1, 16, 34, 142]
    # Only fields that can be built at the size are chosen (286 needs 96 px).
    assert plan.scaled_field(286, 64) == 70
    assert plan.buildable_fields(64) == [1, 16, 34, 70, 142] and plan.buildable_fields(256)[-1] == 286


def test_default_seeds_two_for_tables_1_and_2_one_for_table_3():
    rows = plan.rows(plan.TABLES, plan.DEFAULT)
    seeds = plan.seeds_per_arm(rows, plan.DEFAULT)
    assert {seeds[r.arm] for r in rows if r.table in ("objective", "generator")} == {2}
    assert {seeds[r.arm] for r in rows if r.table == "discriminator"} == {1}
    assert sum(seeds.values()) == 7 * 2 + 5


def test_default_plan_trains_shared_rows_once():
    rows = plan.rows(plan.TABLES, plan.DEFAULT)
    assert [r.label for r in rows if r.table == "objective"] == list(plan.PAPER["objective"])
    assert len(rows) == 5 + 4 + 5
    arms = plan.arms(rows)
    # Table 2's U-Net rows are Table 1's L1 and L1+cGAN arms; Table 3 runs at its own size.
    assert len(arms) == 5 + 2 + 5
    # Tables 1 and 2 use the 70x70 PatchGAN scaled to 64 px (16 px: 0.25 of the side, as 70/256).
    assert {r.arm.receptive_field for r in rows if r.table != "discriminator" and r.arm.objective != "L1"} == {16}
    by_label = {(r.table, r.label): r.arm for r in rows}
    assert by_label[("generator", "U-Net (L1)")] == by_label[("objective", "L1")]
    assert {r.arm.image_size for r in rows if r.table == "discriminator"} == {128}
    assert [r.arm.receptive_field for r in rows if r.table == "discriminator"][:4] == [1, 16, 34, 142]


@pytest.mark.parametrize(
    "objective, use_l1, use_gan, conditional",
    [
        ("L1", True, False, False),
        ("GAN", False, True, False),
        ("cGAN", False, True, True),
        ("L1+GAN", True, True, False),
        ("L1+cGAN", True, True, True),
    ],
)
def test_each_objective_becomes_the_right_training_config(objective, use_l1, use_gan, conditional):
    config = plan.Arm(64, objective).config(plan.DEFAULT, seed=1)
    assert (config.train.use_l1, config.train.use_gan) == (use_l1, use_gan)
    assert config.model.conditional == conditional
    assert config.train.seed == 1 and config.train.steps == plan.DEFAULT.steps
    assert config.train.precision == "float32" and config.data.direction == "BtoA"


def test_table3s_70_row_is_table1s_l1_cgan_run_at_the_same_size():
    settings = plan.Settings(steps=10, seeds={"objective": 1}, sizes={"objective": 128, "discriminator": 128})
    by_label = {(r.table, r.label): r.arm for r in plan.rows(("objective", "discriminator"), settings)}
    assert by_label[("discriminator", "70x70")] == by_label[("objective", "L1+cGAN")]


def test_table3_refuses_a_size_where_the_fields_collapse():
    with pytest.raises(Pix2PixError, match="fields collapse"):
        plan.rows(("discriminator",), plan.Settings(steps=10, seeds={"discriminator": 1}, sizes={"discriminator": 64}))


def test_a_claim_naming_a_row_the_plan_lacks_is_refused_when_the_plan_is_built(monkeypatch):
    typo = plan.Claim("discriminator", "8x8 is too small", ("patch8", "patch70"))
    monkeypatch.setattr(plan, "CLAIMS", (*plan.CLAIMS, typo))
    with pytest.raises(Pix2PixError, match=r"'8x8 is too small' names row 'patch8', which table 'discriminator' does"):
        plan.rows(("discriminator",), plan.QUICK)
    # A plan without that table has no rows for the claim to be checked on.
    assert plan.rows(("objective",), plan.QUICK)


def test_a_row_without_a_label_is_refused_when_the_plan_is_built(monkeypatch):
    monkeypatch.delitem(plan.LABELS["generator"], "unet-L1")
    with pytest.raises(Pix2PixError, match="row 'unet-L1' of table 'generator' has no label"):
        plan.rows(("generator",), plan.QUICK)


def test_the_arms_discriminator_has_the_planned_field():
    arm = plan.Arm(128, "L1+cGAN", receptive_field=34)
    settings = plan.Settings(steps=10, seeds={"discriminator": 1}, sizes={"discriminator": 128}, ndf=8, ngf=8)
    _, d = build_models(arm.config(settings, 0), seed=0)
    assert receptive_field(d) == 34


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 1}, "--steps"),
        ({"seeds": {"objective": 0}}, "--seeds"),
        ({"sizes": {"objective": 48}}, "multiple of 32"),
        ({"segmenter_steps": 0}, "segmenter_steps"),
        ({"segmenter_steps": True}, "segmenter_steps"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    base = {"steps": 10, "seeds": {"objective": 1}, "sizes": {"objective": 64}}
    with pytest.raises(Pix2PixError, match=message):
        plan.Settings(**{**base, **kwargs})
