import numpy as np
import pytest
import tensorflow as tf

import pix2pix_tf
from pix2pix_tf import build_discriminator, build_generator, receptive_field
from pix2pix_tf.errors import Pix2PixError


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


@pytest.mark.parametrize("size,depth", [(32, 5), (64, 6), (96, 5), (128, 7)])
def test_generator_shapes_depth_and_tanh_range(size, depth):
    g = build_generator(size, ngf=8)
    assert g.input.name == "input_image" or g.inputs[0].name == "input_image"
    assert (
        sum(
            isinstance(layer, tf.keras.layers.Conv2D) and not isinstance(layer, tf.keras.layers.Conv2DTranspose)
            for layer in g.layers
        )
        == depth
    )
    x = tf.random.uniform((2, size, size, 3), -1, 1, seed=0)
    y = g(x, training=False)
    assert y.shape == (2, size, size, 3) and y.dtype == tf.float32
    # The output is tanh of the last transposed conv, not some other squashing or none.
    logits = tf.keras.Model(g.input, g.get_layer("up1_convT").output)(x, training=False)
    np.testing.assert_allclose(y, np.tanh(logits), atol=1e-6)


def test_generator_channels_and_wrong_size():
    g = build_generator(32, in_channels=1, out_channels=3, ngf=8)
    assert g(tf.zeros((1, 32, 32, 1))).shape == (1, 32, 32, 3)
    with pytest.raises(Pix2PixError, match="multiple of 32 .*got 100"):
        build_generator(100)
    with pytest.raises(Pix2PixError, match="got 16"):
        build_generator(16)


def test_generator_parameter_count_at_256():
    # Reference U-Net (ngf 64), 4x4 kernels:
    #   encoder convs 16 * (3*64 + 64*128 + 128*256 + 256*512 + 4*512*512)            = 19,532,800
    #   decoder convT 16 * (512*512 + 3*1024*512 + 1024*256 + 512*128 + 256*64 + 128*3) = 34,871,296
    #   batch norm gamma+beta: 2 * (encoder 128+256+4*512 + decoder 4*512+256+128+64)  =      9,856
    #   output bias 3                                                                  -> 54,413,955
    # plus biases on the two un-normalised encoder convs (first 64, bottleneck 512),
    # which the reference leaves out although no norm follows them: 54,414,531.
    g = build_generator(256)
    assert _trainable(g) == 54_414_531
    assert abs(_trainable(g) - 54.4e6) / 54.4e6 < 0.001


def test_discriminator_parameter_count_at_256():
    # C64: 16*6*64 + 64 bias; C128: 16*64*128 + 2*128 BN; C256: 16*128*256 + 2*256;
    # C512 (stride 1): 16*256*512 + 2*512; logits: 16*512 + 1
    # = 6,208 + 131,328 + 524,800 + 2,098,176 + 8,193 = 2,768,705 (paper: ~2.77 M)
    assert _trainable(build_discriminator(256)) == 2_768_705


@pytest.mark.parametrize("field,patch", [(1, 256), (16, 126), (34, 62), (70, 30), (142, 14), (286, 6)])
def test_patch_maps_and_receptive_fields(field, patch):
    d = build_discriminator(256, ndf=8, receptive_field=field)
    assert receptive_field(d) == field
    out = d([tf.zeros((1, 256, 256, 3)), tf.zeros((1, 256, 256, 3))])
    assert out.shape == (1, patch, patch, 1)


@pytest.mark.parametrize("field", [1, 16, 70])
def test_receptive_field_matches_the_gradient_footprint(field):
    # The input pixels with a non-zero gradient for one central logit span exactly
    # the receptive field that receptive_field() reads off the layers.
    d = build_discriminator(128, ndf=4, receptive_field=field, norm="none", conditional=False)
    x = tf.random.uniform((1, 128, 128, 3), seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = d(x)
        centre = out.shape[1] // 2
        logit = out[0, centre, centre, 0]
    rows = np.nonzero(np.abs(tape.gradient(logit, x).numpy()[0]).sum(axis=(1, 2)))[0]
    assert rows.max() - rows.min() + 1 == field == receptive_field(d)


def test_too_small_for_the_patch_is_a_clear_error():
    with pytest.raises(Pix2PixError, match="286x286 PatchGAN needs images of at least 96 px; got 64"):
        build_discriminator(64, receptive_field=286)
    with pytest.raises(Pix2PixError, match="receptive_field must be one of"):
        build_discriminator(64, receptive_field=50)


def test_unconditional_discriminator_ignores_the_input_image():
    d = build_discriminator(32, ndf=8, conditional=False)
    assert [t.name for t in d.inputs] == ["target_image"]
    cond = build_discriminator(32, ndf=8, conditional=True)
    assert [t.name for t in cond.inputs] == ["input_image", "target_image"]
    target = tf.random.uniform((1, 32, 32, 3), seed=2)
    a, b = tf.random.uniform((1, 32, 32, 3), seed=3), tf.random.uniform((1, 32, 32, 3), seed=4)
    assert not np.allclose(cond([a, target], training=False), cond([b, target], training=False))


@pytest.mark.parametrize("norm", ["batch", "syncbatch", "instance", "none"])
def test_norm_options(norm):
    g = build_generator(32, ngf=8, norm=norm)
    kinds = {type(layer).__name__ for layer in g.layers}
    expected = {
        "batch": "BatchNormalization",
        "syncbatch": "BatchNormalization",
        "instance": "GroupNormalization",
        "none": None,
    }[norm]
    norms = kinds & {"BatchNormalization", "GroupNormalization"}
    assert norms == ({expected} if expected else set())
    synchronized = {layer.synchronized for layer in g.layers if type(layer).__name__ == "BatchNormalization"}
    assert synchronized == ({norm == "syncbatch"} if expected == "BatchNormalization" else set())
    assert "down1_norm" not in {layer.name for layer in g.layers}
    assert "down5_norm" not in {layer.name for layer in g.layers}  # no norm on the 1x1 bottleneck


def test_bottleneck_survives_batch_size_one():
    # With batch norm on a 1x1 map and batch 1, the normalised value is exactly 0 (the
    # value is its own batch mean): the decoder would get beta whatever the input.
    # Without a norm there, what it gets still carries the input. Read where the decoder
    # takes it, after any norm and the ReLU: (1, 1, 1, 8 ngf).
    g = build_generator(32, ngf=8)
    bottleneck = tf.keras.Model(g.input, g.get_layer("up5_relu").output)
    a, b = (bottleneck(tf.random.uniform((1, 32, 32, 3), seed=s), training=True) for s in (1, 2))
    assert a.shape == (1, 1, 1, 64)
    assert float(tf.reduce_max(tf.abs(a))) > 0
    assert float(tf.reduce_max(tf.abs(a - b))) > 0


def test_dropout_in_the_three_innermost_decoder_blocks_only():
    g = build_generator(64, ngf=8)
    assert [layer.name for layer in g.layers if "dropout" in layer.name] == [
        "up6_dropout",
        "up5_dropout",
        "up4_dropout",
    ]


def test_on_one_device_syncbatch_is_batch_norm_and_dropout_is_keras_dropout():
    # The distributed variants (tested in test_distribute) must change nothing on one device.
    import keras

    from pix2pix_tf.models.layers import Dropout

    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=3)
    # Dropout off: its seeds are not the model seed's, so two builds would draw different masks.
    batch, synced = (build_generator(32, ngf=8, norm=n, dropout=0.0, seed=5) for n in ("batch", "syncbatch"))
    np.testing.assert_array_equal(pix2pix_tf.generate(batch, x), pix2pix_tf.generate(synced, x))
    # With batch statistics the synchronized layer sums the moments itself: equal to rounding.
    np.testing.assert_allclose(
        pix2pix_tf.generate(synced, x, stochastic=True), pix2pix_tf.generate(batch, x, stochastic=True), atol=1e-5
    )
    features = tf.ones((4, 64))
    ours, theirs = Dropout(0.5, seed=9), keras.layers.Dropout(0.5, seed=9)
    np.testing.assert_array_equal(ours(features, training=True), theirs(features, training=True))
    np.testing.assert_array_equal(ours(features, training=False), features)


def test_skip_connections_switch():
    unet = build_generator(32, ngf=8)
    plain = build_generator(32, ngf=8, skip_connections=False)
    assert any(layer.name.startswith("skip") for layer in unet.layers)
    assert not any(layer.name.startswith("skip") for layer in plain.layers)
    assert _trainable(plain) < _trainable(unet)


def test_test_time_noise_modes():
    g = build_generator(32, ngf=8)
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=5)
    det1, det2 = pix2pix_tf.generate(g, x), pix2pix_tf.generate(g, x)
    np.testing.assert_array_equal(det1, det2)
    moving = [v for v in g.non_trainable_variables if "moving" in v.path]
    assert moving
    before = [v.numpy().copy() for v in moving]

    @tf.function
    def traced(model, images):  # how the exported serving_stochastic signature calls it
        return pix2pix_tf.generate(model, images, stochastic=True)

    s1, s2 = pix2pix_tf.generate(g, x, stochastic=True), pix2pix_tf.generate(g, x, stochastic=True)
    assert np.abs(s1 - s2).max() > 0.01  # dropout noise differs between calls
    assert np.abs(traced(g, x) - traced(g, x)).max() > 0.01
    pix2pix_tf.generate(g, tf.fill((2, 32, 32, 3), np.nan), stochastic=True)  # garbage in: statistics stay finite
    for v, b in zip(moving, before):
        np.testing.assert_array_equal(v.numpy(), b)  # moving statistics untouched, eager or traced

    # Without dropout, the stochastic mode differs from the deterministic one only in
    # batch norm: it normalises with the statistics of the batch, as a training call does.
    g0 = build_generator(32, ngf=8, dropout=0.0)
    stochastic = pix2pix_tf.generate(g0, x, stochastic=True).numpy()
    assert np.abs(stochastic - pix2pix_tf.generate(g0, x)).max() > 0.01
    np.testing.assert_allclose(traced(g0, x), stochastic, atol=1e-5)
    np.testing.assert_allclose(g0(x, training=True), stochastic, atol=1e-6)  # last: this call updates the statistics


def test_keras_save_load_round_trip(tmp_path):
    import keras

    for model, inputs in (
        (build_generator(32, ngf=8, norm="instance"), tf.random.uniform((1, 32, 32, 3))),
        (build_discriminator(32, ndf=8), [tf.zeros((1, 32, 32, 3)), tf.ones((1, 32, 32, 3))]),
    ):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_array_equal(model(inputs, training=False), loaded(inputs, training=False))


def _kernels(model):
    return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}


@pytest.mark.parametrize(
    "build",
    [
        lambda seed: build_generator(256, seed=seed),
        lambda seed: build_generator(64, seed=seed),
        lambda seed: build_discriminator(256, seed=seed),
    ],
    ids=["G256", "G64", "D256"],
)
def test_every_kernel_starts_from_its_own_n_0_002_draw(build):
    # Keras 3 initializer instances return the same values on every call: shared
    # by all layers, they started same-shaped kernels identical (e.g. down5..down8).
    kernels = _kernels(build(0))
    assert len(kernels) >= 5
    for name, kernel in kernels.items():
        assert abs(kernel.std() - 0.02) < 0.002, (name, kernel.std())  # within 10% of the paper's 0.02
        assert abs(kernel.mean()) < 0.002, name
    # No two kernels are equal, not even in part (compare the first 64 values of each).
    heads = {name: kernel.ravel()[:64].tobytes() for name, kernel in kernels.items()}
    assert len(set(heads.values())) == len(heads), [n for n in heads if list(heads.values()).count(heads[n]) > 1]
    again, other = _kernels(build(0)), _kernels(build(1))
    for name, kernel in kernels.items():
        np.testing.assert_array_equal(kernel, again[name])  # the same seed rebuilds the same model
        assert not np.array_equal(kernel, other[name]), name  # another seed gives other weights


def test_unseeded_builds_follow_keras_global_seed():
    import keras

    keras.utils.set_random_seed(3)
    a = _kernels(build_generator(32, ngf=8))
    keras.utils.set_random_seed(3)
    b = _kernels(build_generator(32, ngf=8))
    c = _kernels(build_generator(32, ngf=8))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not any(np.array_equal(a[n], c[n]) for n in a)
    assert len({k.ravel()[:16].tobytes() for k in a.values()}) == len(a)


def test_build_models_gives_g_and_d_distinct_kernels():
    from pix2pix_tf.config import Config
    from pix2pix_tf.models import build_models

    g, d = build_models(Config().replace(data={"image_size": 64}), seed=0)
    heads = [k.ravel()[:64].tobytes() for k in (*_kernels(g).values(), *_kernels(d).values())]
    assert len(set(heads)) == len(heads)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_every_variable_gets_a_gradient_from_the_objective(norm):
    from pix2pix_tf.losses import discriminator_loss, generator_loss

    g, d = build_generator(32, ngf=8, norm=norm), build_discriminator(32, ndf=8, norm=norm)
    x, y = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=6), tf.random.uniform((2, 32, 32, 3), -1, 1, seed=7)
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        fake = g(x, training=True)
        real_logits, fake_logits = d([x, y], training=True), d([x, fake], training=True)
        g_loss = generator_loss(fake_logits, fake, y)["g_total"]
        d_loss = discriminator_loss(real_logits, fake_logits)["d_total"]
    for model, tape, loss in ((g, g_tape, g_loss), (d, d_tape, d_loss)):
        grads = tape.gradient(loss, model.trainable_variables)
        zero = [
            v.path
            for v, grad in zip(model.trainable_variables, grads)
            if grad is None or float(tf.reduce_max(tf.abs(grad))) == 0
        ]
        assert zero == []


def test_concurrent_stochastic_calls_leave_batch_norm_as_it_was():
    import threading

    g = build_generator(32, ngf=8)
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=8)

    def calls():
        for _ in range(5):
            pix2pix_tf.generate(g, x, stochastic=True)

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    momenta = {layer.momentum for layer in g.layers if isinstance(layer, tf.keras.layers.BatchNormalization)}
    assert momenta == {0.9}  # training afterwards still updates the moving statistics
