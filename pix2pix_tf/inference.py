"""A trained generator, whatever form it is in, applied to images.

`load(path)` (and, for code that needs the Keras model itself, `load_generator`
for a work dir and `generator_from_export` for an export) is how the package gets
a trained model: `predict`, `evaluate`, export and the notebooks go through it.
`load` takes whatever `artifacts.open_model` recognises (a training work dir, an
export dir, a SavedModel dir or a .tflite file) and returns a `Translator`, which
maps images of any size to images of the same size in one of two ways:

* at the model size (default): resize to S x S, translate, resize back, which is
  what the network saw in training;
* at the image's own resolution (`native_size=True`): pad to the next size the
  U-Net accepts (a multiple of 2^depth), translate, crop back. The paper (sec. 4.4)
  trains at 256 and applies the generator to 512 x 512 maps: a fully
  convolutional network need not squash a 300 x 451 photo to 256 x 256.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import ImageOps

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.files import load_config, read_json, write_file
from pix2pix_tf.artifacts.model_path import open_model
from pix2pix_tf.checkpoints import restore_newest_readable
from pix2pix_tf.config import Config
from pix2pix_tf.data.images import IMAGE_EXTENSIONS, list_images, read_image
from pix2pix_tf.data.pipeline import image_to_model, to_uint8
from pix2pix_tf.errors import Pix2PixError, short_message
from pix2pix_tf.models import any_size, discriminator_for, generate, generator_for, unet_depth
from pix2pix_tf.runtime import quiet_native_output
from pix2pix_tf.signatures import DEFAULT_SIGNATURE, NATIVE_SIGNATURE


def load_generator(workdir: str | Path) -> tuple[keras.Model, Config, int]:
    """Rebuilds the generator of a training work dir from its config.json and newest readable checkpoint.

    Returns:
        (generator, config, step of the checkpoint).

    Raises:
        Pix2PixError: `workdir` is not a work dir, or holds no readable checkpoint.
    """
    work = open_model(workdir, accept=("workdir",), refusal="not a training work dir").workdir
    config = work.read_config()
    generator = generator_for(config, precision="float32")  # float32 weights whatever the training precision
    return generator, config, _restore(work, generator=generator)


def load_discriminator(workdir: str | Path) -> tuple[keras.Model, Config, int]:
    """Rebuilds the discriminator of a training work dir (float32) from its newest readable checkpoint.

    Returns:
        (discriminator, config, step of the checkpoint); see `models.patch_probabilities`.

    Raises:
        Pix2PixError: `workdir` is not a work dir, or holds no readable checkpoint.
    """
    work = open_model(workdir, accept=("workdir",), refusal="not a training work dir").workdir
    config = work.read_config()
    discriminator = discriminator_for(config, precision="float32")
    return discriminator, config, _restore(work, discriminator=discriminator)


def _restore(work, **models: keras.Model) -> int:
    """Restores `models` (by their checkpoint names) from `work`'s newest readable checkpoint; returns its step."""
    step = tf.Variable(0, dtype=tf.int64)
    if restore_newest_readable(tf.train.Checkpoint(step=step, **models), work.checkpoints, partial=True) is None:
        raise Pix2PixError(f"{work.checkpoints}: no checkpoint found; train first")
    return int(step)


# The rebuilt generator and the SavedModel run the same float32 operations; only their
# order of summation may differ (measured: identical on the shipped model, within 1e-6 on the tests').
REBUILD_TOLERANCE = 1e-4
REBUILD_CHECK_INPUTS = 3


def generator_from_export(export_dir: str | Path) -> tuple[keras.Model, Config, int]:
    """Rebuilds the Keras generator of an export dir from its config.json and its SavedModel's variables.

    For an export whose training work dir is gone, such as the shipped model's. The
    SavedModel keeps the generator's variables in the Keras model's order
    (`signatures.GeneratorModule.tf_variables`): the generator the config describes
    takes them one by one, each checked for shape and dtype, and must then give the
    SavedModel's DEFAULT_SIGNATURE outputs on a few random inputs (within REBUILD_TOLERANCE).

    Returns:
        (generator, config, the step the export was made at).

    Raises:
        Pix2PixError: not an export dir; its config, report or SavedModel unreadable; or a
            config that does not describe the SavedModel's generator.
    """
    export = ExportDir(open_model(export_dir, accept=("export",), refusal="not an export dir").path)
    config = load_config(export.config)
    step = read_json(export.report, "the report written by pix2pix-tf export").get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise Pix2PixError(f"{export.report}: expected the step of the export, found {step!r}")
    loaded = load_saved_model(export.saved_model.root)
    generator = generator_for(config, precision="float32")
    saved, wanted = list(getattr(loaded, "tf_variables", [])), generator.variables
    mismatch = f"{export.config} does not describe the generator in {export.saved_model.root}"
    if len(saved) != len(wanted):
        raise Pix2PixError(
            f"{mismatch}: the generator it describes has {len(wanted)} variables, the SavedModel {len(saved)}"
        )
    for source, target in zip(saved, wanted, strict=True):
        if list(source.shape) != list(target.shape) or source.dtype.name != target.dtype:
            raise Pix2PixError(
                f"{mismatch}: the generator it describes has {target.path} {target.dtype} {list(target.shape)} where "
                f"the SavedModel has {source.name} {source.dtype.name} {source.shape.as_list()}"
            )
        target.assign(source)
    size, channels = config.data.image_size, config.data.channels
    x = tf.random.stateless_uniform((REBUILD_CHECK_INPUTS, size, size, channels), (0, 0), -1.0, 1.0)
    expected = loaded.signatures[DEFAULT_SIGNATURE](input_image=x)["output_image"]
    difference = float(tf.reduce_max(tf.abs(generator(x, training=False) - expected)))
    if not difference <= REBUILD_TOLERANCE:  # NaN included
        raise Pix2PixError(
            f"{mismatch}: the generator rebuilt with the SavedModel's variables gives other outputs than its "
            f"{DEFAULT_SIGNATURE} (largest difference {difference:.3g}, at most {REBUILD_TOLERANCE:g} expected)"
        )
    return generator, config, step


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_threads(num_threads: int | None) -> int:
    """`num_threads`, or the available cores for None; anything but a whole number >= 1 is refused."""
    if num_threads is None:
        return available_cores()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise Pix2PixError(f"TFLite threads must be a whole number >= 1; got {num_threads!r}")
    return num_threads


class TFLiteRunner:
    """Runs a .tflite generator with ai-edge-litert, one image at a time, through its float signature.

    That is DEFAULT_SIGNATURE (float32 in [-1, 1]) where the file has it among others
    (exports carry a uint8 signature beside it), else the file's only signature (files
    exported before that have one).

    Args:
        model: a .tflite path or its bytes.
        num_threads: interpreter threads (default: the cores this process may use).

    Raises:
        Pix2PixError: the file has no such float32 signature.
    """

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.num_threads = check_threads(num_threads)
        kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        with quiet_native_output():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(num_threads=self.num_threads, **kwargs)
            self.interpreter.allocate_tensors()  # creates the delegate (and its note) here, for every signature
        keys = sorted(self.interpreter.get_signature_list())
        name = "the model" if isinstance(model, bytes) else str(model)
        if DEFAULT_SIGNATURE not in keys and len(keys) != 1:
            raise Pix2PixError(
                f"{name}: expected a {DEFAULT_SIGNATURE} signature or a single one; found {', '.join(keys) or 'none'}"
            )
        self.signature = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in keys else keys[0]
        self._run = self.interpreter.get_signature_runner(self.signature)
        inputs, outputs = self._run.get_input_details(), self._run.get_output_details()
        tensors = [*inputs.values(), *outputs.values()]
        if len(inputs) != 1 or len(outputs) != 1 or any(tensor["dtype"] != np.float32 for tensor in tensors):
            raise Pix2PixError(f"{name}: its {self.signature} signature does not take and return one float32 image")
        [(self._input_name, self.input)] = inputs.items()
        [(self._output_name, self.output)] = outputs.items()
        self.image_size, self.channels = int(self.input["shape"][1]), int(self.input["shape"][3])

    def __call__(self, batch) -> np.ndarray:
        """(N, H, W, C) float32 in [-1, 1] -> the same, one interpreter call per image.

        H x W other than the converted size resizes the signature's input first (the
        signature runner does, and keeps the size until another one comes).
        """
        return np.stack(
            [
                self._run(**{self._input_name: image[None]})[self._output_name][0]
                for image in np.asarray(batch, np.float32)
            ]
        )


@dataclasses.dataclass
class Translator:
    """A trained generator applied to images; see `load`.

    Attributes:
        run: (N, S, S, C) float32 in [-1, 1] at the model size -> the same.
        run_any_size: (N, H, W, C) with H, W multiples of `multiple` -> the same.
        image_size: the side S the model was trained at.
        channels: image channels in and out.
        kind: "workdir", "saved_model" or "tflite".
        path: where it was loaded from.
    """

    run: Callable[[np.ndarray], np.ndarray]
    run_any_size: Callable[[np.ndarray], np.ndarray]
    image_size: int
    channels: int
    kind: str
    path: Path

    @property
    def multiple(self) -> int:
        """Native-size inputs are padded to a multiple of this: 2 to the U-Net's depth."""
        return 2 ** unet_depth(self.image_size)

    def __call__(self, images, native_size: bool = False, half: str | None = None):
        """Translates images; each result has its input's size.

        Args:
            images: one image (uint8 array (H, W, C) or (H, W), PIL image, or file
                path), a uint8 batch (N, H, W, C), or a list of images.
            native_size: translate at each image's own resolution instead of the
                model size (see the module docstring).
            half: "left" or "right": translate only that half of A|B images (e.g.
                the label maps of a standard dataset's test files).

        Returns:
            uint8 (H, W, C) for one image, (N, H, W, C) for a batch, a list for a list.
        """
        if isinstance(images, list | tuple):
            return [self._one(image, native_size, half) for image in images]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return np.stack([self._one(image, native_size, half) for image in images])
        return self._one(images, native_size, half)

    def _one(self, image, native_size: bool, half: str | None) -> np.ndarray:
        if half not in (None, "left", "right"):
            raise Pix2PixError(f"half must be 'left', 'right' or None; got {half!r}")
        image = as_image(image, self.channels)
        if half is not None:
            middle = int(image.shape[1]) // 2
            image = image[:, :middle] if half == "left" else image[:, middle : 2 * middle]
        height, width = int(image.shape[0]), int(image.shape[1])
        if not native_size:
            y = self.run(image_to_model(image, self.image_size)[None].numpy())
            return to_uint8(tf.convert_to_tensor(y)[0], size=(height, width)).numpy()
        y = np.asarray(self.run_any_size(pad_to_multiple(image, self.multiple)[None]))[0, :height, :width]
        return to_uint8(tf.convert_to_tensor(y)).numpy()


def pad_to_multiple(image, multiple: int) -> np.ndarray:
    """uint8 (H, W, C) -> float32 in [-1, 1], padded at the bottom and right to multiples of `multiple`.

    Edge padding: a border of repeated pixels, not black bars the network would translate.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    return np.pad(
        np.asarray(image, np.float32) / 127.5 - 1.0,
        ((0, -height % multiple), (0, -width % multiple), (0, 0)),
        mode="edge",
    )


def as_image(image, channels: int) -> tf.Tensor:
    """A file path, PIL image or array -> uint8 (H, W, channels), converted as training decodes files.

    Files follow the package's one decoding rule (`data.images`: EXIF orientation
    applied, first picture of a multi-picture file); a PIL image is turned upright too.

    Raises:
        Pix2PixError: an unreadable file or an array that is not an image.
    """
    if isinstance(image, str | Path):
        image = read_image(image)
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image: upright, as files are
        image = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise Pix2PixError(f"expected a uint8 image (values 0-255); got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise Pix2PixError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}")
    if array.shape[-1] == 4:
        array = array[..., :3]  # alpha dropped, as for files
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    image = tf.convert_to_tensor(array)
    return tf.image.rgb_to_grayscale(image) if channels == 1 else image


def _from_workdir(path: Path, stochastic: bool) -> Translator:
    generator, config, _ = load_generator(path)
    native = any_size(generator)
    return Translator(
        run=lambda x: generate(generator, x, stochastic=stochastic).numpy(),
        run_any_size=lambda x: generate(native, x, stochastic=stochastic).numpy(),
        image_size=config.data.image_size,
        channels=config.data.channels,
        kind="workdir",
        path=path,
    )


def load_saved_model(path: str | Path):
    """Loads a SavedModel dir that has a `serving_default` signature (what `load` and `serve` accept).

    Raises:
        Pix2PixError: the folder is no readable SavedModel, or it lacks that signature.
    """
    try:
        with quiet_native_output():
            loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise Pix2PixError(f"{path}: not a readable SavedModel ({short_message(e)})") from None
    if DEFAULT_SIGNATURE not in loaded.signatures:
        found = sorted(loaded.signatures) or "none"
        raise Pix2PixError(f"{path}: expected a {DEFAULT_SIGNATURE} signature; found {found}")
    return loaded


def _from_saved_model(path: Path) -> Translator:
    signatures = load_saved_model(path).signatures
    serve = signatures[DEFAULT_SIGNATURE]
    spec = serve.structured_input_signature[1]["input_image"]

    def run_any_size(x):
        if NATIVE_SIGNATURE not in signatures:
            raise Pix2PixError(
                f"{path}: has no {NATIVE_SIGNATURE} signature (exported before native-size support); export it again"
            )
        return signatures[NATIVE_SIGNATURE](input_image=tf.convert_to_tensor(x, tf.float32))["output_image"].numpy()

    return Translator(
        run=lambda x: serve(input_image=tf.convert_to_tensor(x, tf.float32))["output_image"].numpy(),
        run_any_size=run_any_size,
        image_size=int(spec.shape[1]),
        channels=int(spec.shape[3]),
        kind="saved_model",
        path=path,
    )


def _from_tflite(path: Path, num_threads: int | None) -> Translator:
    try:
        runner = TFLiteRunner(path, num_threads=num_threads)
    except (ValueError, RuntimeError) as e:  # the interpreter's "not a valid Flatbuffer", failed allocation
        raise Pix2PixError(f"{path}: not a TFLite model ({short_message(e)})") from None
    return Translator(runner, runner, runner.image_size, runner.channels, "tflite", path)


def load(path: str | Path, stochastic: bool = False, num_threads: int | None = None) -> Translator:
    """Loads a trained generator in any of its forms.

    Args:
        path: a training work dir, an export dir (holding saved_model/), a
            SavedModel dir, or a .tflite file.
        stochastic: the paper's test mode (dropout on, batch statistics); work
            dirs only, as exported models are deterministic.
        num_threads: TFLite interpreter threads (default: the available cores).

    Returns:
        A `Translator`.

    Raises:
        Pix2PixError: the path is missing or holds no readable model.
    """
    model = open_model(path)
    if stochastic and model.kind != "workdir":
        raise Pix2PixError(
            f"{model.path}: stochastic mode needs a training work dir; exported models are deterministic"
        )
    if model.kind == "workdir":
        return _from_workdir(model.path, stochastic)
    if model.kind == "tflite":
        return _from_tflite(model.path, num_threads)
    return _from_saved_model(model.saved_model.root)


def input_files(path: str | Path) -> list[Path]:
    """An image file, or the images in a folder."""
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise Pix2PixError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
        return files
    if not path.exists():
        raise Pix2PixError(f"{path}: no such file or folder")
    return [path]


def output_names(files: list[Path]) -> list[str]:
    """The PNG each input is translated to: `stem.png`, or `name.png` (a.jpg.png) where stems collide.

    Names are compared ignoring case, as a case-insensitive disk would.

    Raises:
        Pix2PixError: two inputs would still be written to one file.
    """
    stems = collections.Counter(path.stem.lower() for path in files)
    names = [f"{path.stem if stems[path.stem.lower()] == 1 else path.name}.png" for path in files]
    first = {}
    for path, name in zip(files, names, strict=True):
        other = first.setdefault(name.lower(), path)
        if other != path:
            raise Pix2PixError(f"{other} and {path} would both be translated to {name}; rename one of them")
    return names


def predict(
    translator: Translator,
    inputs: str | Path,
    output_dir: str | Path,
    half: str | None = None,
    native_size: bool = False,
) -> list[Path]:
    """Translates an image or a folder of images into `output_dir` as PNGs of the same size and stem.

    Inputs sharing a stem (a.jpg, a.png) keep their whole name (a.jpg.png, a.png.png),
    so that no translation replaces another.

    Args:
        translator: from `load`.
        inputs: an image file or a folder of images.
        output_dir: where the PNGs go (not the input folder: same-named PNGs would be replaced).
        half: "left"/"right": translate one half of A|B images.
        native_size: translate at each image's own resolution (see `Translator`).

    Returns:
        The written files.
    """
    output_dir, files = Path(output_dir), input_files(inputs)
    if output_dir.exists() and not output_dir.is_dir():
        raise Pix2PixError(f"{output_dir}: is a file; --output takes the folder to write the PNGs to")
    # Outputs are named like their inputs: written into the input folder, they would
    # replace the user's own PNGs.
    if output_dir.resolve() in {path.parent.resolve() for path in files}:
        raise Pix2PixError(f"{output_dir}: is the input folder; write the translations to another folder")
    names = output_names(files)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, name in zip(files, names, strict=True):
        result = translator(path, native_size=native_size, half=half)
        target = output_dir / name
        write_file(target, tf.io.encode_png(result).numpy(), f"the translation of {path}")
        written.append(target)
    print(f"wrote {len(written)} image(s) to {output_dir}")
    return written
