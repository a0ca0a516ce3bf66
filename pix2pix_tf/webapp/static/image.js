// An image file at the model's size, by the Python package's rules, so that an upload or an
// example becomes the input `pix2pix-tf predict` would make of the same file:
// - decoding (pix2pix_tf/data/images.py `decode`): EXIF orientation applied, colour profile
//   ignored, the alpha channel dropped (the stored RGB kept, not composited), grey as RGB;
// - resizing (pix2pix_tf/data/pipeline.py `image_to_model`): tf.image.resize(method="bicubic",
//   antialias=True), i.e. TensorFlow's scale_and_translate with the Keys cubic kernel.
// The result is rounded to the canvas's 8 bits: within half a level of the Translator's floats.

/** The pixels of an image file: {width, height, rgb: Uint8Array (row-major RGB)}, upright, alpha dropped. */
async function decode(blob) {
  // "none": no premultiplied alpha (it would lose the colour under transparent pixels) and
  // no colour management, as Pillow reads a file.
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none",
  });
  try {
    const rgba = readWebGl(bitmap) ?? read2d(bitmap);
    const rgb = new Uint8Array(bitmap.width * bitmap.height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4) {
      rgb[j++] = rgba[i]; rgb[j++] = rgba[i + 1]; rgb[j++] = rgba[i + 2];
    }
    return { width: bitmap.width, height: bitmap.height, rgb };
  } finally {
    bitmap.close();
  }
}

// A 2D canvas stores premultiplied alpha: fully transparent pixels read back black. WebGL
// uploads the bitmap as it is and reads it back exactly; null where it is unavailable.
function readWebGl(bitmap) {
  const gl = new OffscreenCanvas(1, 1).getContext("webgl");
  if (!gl) return null;
  try {
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, bitmap);
    const framebuffer = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) return null;
    const rgba = new Uint8Array(bitmap.width * bitmap.height * 4);
    gl.readPixels(0, 0, bitmap.width, bitmap.height, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    return gl.getError() === gl.NO_ERROR ? rgba : null;  // e.g. larger than the GPU's textures
  } finally {
    gl.getExtension("WEBGL_lose_context")?.loseContext();  // browsers allow only a few live contexts
  }
}

function read2d(bitmap) {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
}

// Keys' cubic convolution kernel with a = -0.5 (TensorFlow's "keyscubic"), support [-2, 2].
function keysCubic(x) {
  x = Math.abs(x);
  if (x >= 2) return 0;
  if (x >= 1) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
  return (1.5 * x - 2.5) * x * x + 1;
}

/**
 * The weights of one axis, as TensorFlow's ComputeSpans: output pixel i samples the input at
 * (i + 0.5) / scale (half-pixel centres); when shrinking, the kernel is widened by 1 / scale
 * (the antialias); weights that fall outside the input are dropped and the rest renormalised.
 * @returns {{start: Int32Array, weights: Float64Array[]}} per output pixel: first input pixel and weights.
 */
function spans(inputSize, outputSize) {
  const scale = outputSize / inputSize;
  const widen = Math.max(1 / scale, 1);
  const radius = 2 * widen;
  const start = new Int32Array(outputSize);
  const weights = [];
  for (let i = 0; i < outputSize; i++) {
    const centre = (i + 0.5) / scale;
    const first = Math.min(Math.max(Math.ceil(centre - radius - 0.5), 0), inputSize - 1);
    const end = Math.min(Math.max(Math.floor(centre + radius - 0.5), 0), inputSize - 1) + 1;
    const w = new Float64Array(end - first);
    let sum = 0;
    for (let k = first; k < end; k++) sum += (w[k - first] = keysCubic((k + 0.5 - centre) / widen));
    for (let k = 0; k < w.length; k++) w[k] /= sum;
    start[i] = first;
    weights.push(w);
  }
  return { start, weights };
}

/**
 * Resizes RGB pixels to size × size: tf.image.resize(image, [size, size], "bicubic", antialias=True).
 * @returns {Float64Array} row-major RGB, unclipped (cubic weights overshoot at edges).
 */
function resize(rgb, width, height, size) {
  const columns = spans(width, size);
  const rows = spans(height, size);
  const across = new Float64Array(height * size * 3);  // each input row, resized across
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < size; x++) {
      const w = columns.weights[x];
      let [r, g, b] = [0, 0, 0];
      for (let k = 0, p = 3 * (y * width + columns.start[x]); k < w.length; k++, p += 3) {
        r += w[k] * rgb[p]; g += w[k] * rgb[p + 1]; b += w[k] * rgb[p + 2];
      }
      const q = 3 * (y * size + x);
      across[q] = r; across[q + 1] = g; across[q + 2] = b;
    }
  }
  const out = new Float64Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const w = rows.weights[y];
    for (let x = 0; x < size; x++) {
      let [r, g, b] = [0, 0, 0];
      for (let k = 0, p = 3 * (rows.start[y] * size + x); k < w.length; k++, p += 3 * size) {
        r += w[k] * across[p]; g += w[k] * across[p + 1]; b += w[k] * across[p + 2];
      }
      const q = 3 * (y * size + x);
      out[q] = r; out[q + 1] = g; out[q + 2] = b;
    }
  }
  return out;
}

/**
 * An image file as the canvas takes it: decoded, resized to size × size, rounded, opaque.
 * @returns {Promise<{pixels: ImageData, width: number, height: number}>} the pixels and the file's upright size.
 */
export async function atModelSize(blob, size) {
  const { width, height, rgb } = await decode(blob);
  const resized = width === size && height === size ? rgb : resize(rgb, width, height, size);
  const pixels = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    for (let k = 0; k < 3; k++) pixels.data[4 * i + k] = Math.round(resized[3 * i + k]);  // clamped to 0..255
    pixels.data[4 * i + 3] = 255;
  }
  return { pixels, width, height };
}
