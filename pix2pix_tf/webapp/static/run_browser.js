// "In this browser": the exported .tflite variants on LiteRT.js, served from the page's own
// origin (no CDN): WebGPU when the browser gives a device, else WebAssembly (XNNPack), with
// the threaded build when the page is cross-origin isolated. Pre- and post-processing are
// the Python Translator's at the model's size (inference.py, data/pipeline.py): pixels / 127.5 - 1
// in, round((y + 1) * 127.5) clipped to 0..255 out, in float32 as TensorFlow computes them. An
// image of another size reaches the canvas already resized as the Translator resizes it (image.js).

const SIGNATURE = "serving_default";  // float32 [-1, 1] in and out; files with one signature use that one

/**
 * Float32 NHWC input from the canvas's RGBA pixels: RGB, or grey by tf.image.rgb_to_grayscale's
 * rule for a 1-channel model (uint8 / 255, weighted sum, * 255.5 truncated).
 */
export function toModel(rgba, channels) {
  const pixels = rgba.length / 4;
  const x = new Float32Array(pixels * channels);
  const f = Math.fround;
  for (let i = 0; i < pixels; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    if (channels === 1) {
      const grey = f(f(f(f(r / 255) * f(0.2989)) + f(f(g / 255) * f(0.587))) + f(f(b / 255) * f(0.114)));
      x[i] = f(f(Math.trunc(f(grey * 255.5)) / 127.5) - 1);
    } else {
      x[3 * i] = f(f(r / 127.5) - 1);
      x[3 * i + 1] = f(f(g / 127.5) - 1);
      x[3 * i + 2] = f(f(b / 127.5) - 1);
    }
  }
  return x;
}

// What went wrong, in words: LiteRT.js rejects with an Event when a loader <script> fails.
function reason(error) {
  return error instanceof Error ? error.message : `${error?.type ?? "an"} event (a script it loads was refused or missing)`;
}

// How the wasm heap running full shows: a failed grow, an allocator abort, or (LiteRT.js 2.5.3,
// seen at 256 px) a trap on the out-of-range address an allocation returned.
function outOfMemory(error) {
  return /out of memory|\bOOM\b|Cannot enlarge memory|allocation failed|Maximum memory size|memory access out of bounds/i
    .test(reason(error));
}

// tf.round: half to even.
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** RGBA pixels from the model's float32 output in [-1, 1] (grey repeated for a 1-channel model). */
export function toPixels(y, channels, size) {
  const image = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    for (let k = 0; k < 3; k++) {
      const v = y[channels === 1 ? i : 3 * i + k];
      image.data[4 * i + k] = Math.min(255, Math.max(0, roundHalfEven(Math.fround(Math.fround(v + 1) * 127.5))));
    }
    image.data[4 * i + 3] = 255;
  }
  return image;
}

/** A runner that translates with LiteRT.js in this browser. */
export class BrowserRunner {
  /**
   * @param {object} config the page config: image_size, channels, variants [{variant, file, bytes}],
   *     runtime {module, wasm} (paths of the web app's layout).
   * @param {(path: string) => string} here a path of the web app's layout -> its URL.
   */
  constructor(config, here) {
    this.config = config;
    this.here = here;
    this.loading = Promise.reject(new Error("no model is loaded yet: pick a model"));
    this.loading.catch(() => {});
    this.model = null;
  }

  /** Loads the LiteRT.js runtime: the threaded wasm if the page is cross-origin isolated, else one thread. */
  async start() {
    const module = this.config.runtime.module;
    try {
      this.litert = await import(this.here(module));
    } catch (error) {
      throw new Error(
        `the LiteRT.js runtime did not load from ${module} (${reason(error)}); ` +
        "write the web app again with pix2pix-tf web, where npm or its cache can reach the runtime",
      );
    }
    const wasm = this.here(this.config.runtime.wasm);
    this.threaded = false;
    // SharedArrayBuffer exists only in a cross-origin isolated page (COOP + COEP headers); without
    // it the threaded build throws. A failed load may be retried, here single-threaded.
    if (self.crossOriginIsolated) {
      try {
        await this.litert.loadLiteRt(wasm, { threads: true });
        this.threaded = true;
      } catch (error) {
        console.warn(`LiteRT.js: the threaded wasm did not load (${reason(error)}); using one thread`);
      }
    }
    if (!this.threaded) {
      try {
        await this.litert.loadLiteRt(wasm);
      } catch (error) {
        throw new Error(`the LiteRT.js WebAssembly runtime did not start from ${this.config.runtime.wasm}: ${reason(error)}`);
      }
    }
    this.accelerator = this.litert.getWebGpuDevice() ? "webgpu" : "wasm";
  }

  /** Loads a variant (the previous model is freed); returns a line saying what runs where. */
  load(variant) {
    this.loading = this.loadModel(variant);
    return this.loading;
  }

  async loadModel(variant) {
    const entry = this.config.variants.find(v => v.variant === variant);
    if (!entry) throw new Error(`this web app has no ${variant} model`);
    // Fetched here rather than by URL: LiteRT.js would feed a 404 page to the runtime and
    // report it as a damaged model.
    let reply;
    try {
      reply = await fetch(this.here(entry.file));
    } catch (error) {
      throw new Error(`${entry.file}: could not be fetched (${reason(error)})`);
    }
    if (!reply.ok) {
      throw new Error(`${entry.file}: HTTP ${reply.status} ${reply.statusText}; the model file is missing: ` +
        "write the web app again with pix2pix-tf web");
    }
    const bytes = new Uint8Array(await reply.arrayBuffer());
    // The old model goes first: two large models at once can pass the wasm heap's 2 GB
    // (256 px float16 then float32 did), and a failed load leaves none loaded anyway.
    if (this.model) this.model.delete();
    this.model = null;
    const start = performance.now();
    let model;
    try {
      model = await this.compile(bytes);
    } catch (error) {
      if (outOfMemory(error)) {
        throw new Error(`this browser ran out of memory compiling ${entry.file} (${(bytes.length / 1e6).toFixed(0)} MB; ` +
          `${reason(error)}): LiteRT.js's WebAssembly heap holds at most 2 GB. Reload the page, then pick a smaller ` +
          "variant (int8 or float16) or export the model at a smaller size");
      }
      throw new Error(`${entry.file} (${bytes.length} bytes) is not a model LiteRT.js can run (${reason(error)}): ` +
        "the file may be damaged; write the web app again with pix2pix-tf web");
    }
    let signature;
    try {
      signature = this.signatureOf(model, entry.file);
    } catch (error) {
      model.delete();
      throw error;
    }
    Object.assign(this, { model, signature, variant, loadMs: performance.now() - start });
    return this.describe();
  }

  async compile(bytes) {
    if (this.accelerator === "webgpu") {
      try {
        return await this.litert.loadAndCompile(bytes, { accelerator: "webgpu" });
      } catch (error) {
        console.warn(`LiteRT.js: WebGPU could not compile the model (${reason(error)}); using wasm`);
      }
    }
    return await this.litert.loadAndCompile(bytes, { accelerator: "wasm" });
  }

  // serving_default by name; a file with a single signature (or none) runs that one.
  signatureOf(model, file) {
    const keys = Object.keys(model.signatures ?? {});
    const key = keys.includes(SIGNATURE) ? SIGNATURE : keys.length <= 1 ? keys[0] ?? null : undefined;
    if (key === undefined) throw new Error(`${file} has no ${SIGNATURE} signature; it has ${keys.join(", ")}`);
    const [input] = (key === null ? model : model.signatures[key]).getInputDetails();
    const { image_size: size, channels } = this.config;
    const shape = Array.from(input.shape);
    if (input.dtype !== "float32" || shape.join() !== [1, size, size, channels].join()) {
      throw new Error(`${file}: its ${key ?? "only"} signature takes ${input.dtype} [${shape}], ` +
        `not float32 [1,${size},${size},${channels}] as this model's page sends`);
    }
    return key;
  }

  /** What runs where, for the page: variant, accelerator, threads, load time. */
  describe() {
    const where = this.model.options.accelerator === "webgpu"
      ? "WebGPU"
      : `wasm, ${this.threads()} thread${this.threads() === 1 ? "" : "s"}${this.whyOneThread()}`;
    return `in this browser: ${this.variant} on ${where}; loaded in ${this.loadMs.toFixed(0)} ms`;
  }

  threads() {
    return this.model.options.cpuOptions?.numThreads ?? this.litert.getGlobalLiteRt().liteRtWasm.getThreadCount();
  }

  whyOneThread() {
    if (this.threaded) return "";
    if (!window.isSecureContext) return " (not a secure context: open it over https or on localhost for threads and WebGPU)";
    if (!self.crossOriginIsolated) return " (the server sends no COOP/COEP headers, so no threads)";
    return "";
  }

  /**
   * Translates the canvas with the loaded model.
   *
   * @param {HTMLCanvasElement} canvas the input, at the model's size.
   * @returns {Promise<{url: string, status: string}>} the translation as a PNG data URL, and a line about the run.
   */
  async translate(canvas) {
    await this.loading;  // a model that failed to load says why again
    const { image_size: size, channels } = this.config;
    const pixels = canvas.getContext("2d").getImageData(0, 0, size, size).data;
    const start = performance.now();
    const input = new this.litert.Tensor(toModel(pixels, channels), [1, size, size, channels]);
    let outputs;
    try {
      outputs = this.signature === null ? await this.model.run(input) : await this.model.run(this.signature, input);
    } finally {
      input.delete();
    }
    const all = Array.isArray(outputs) ? outputs : Object.values(outputs);
    const host = all[0].accelerator === "wasm" ? all[0] : await all[0].moveTo("wasm");
    const y = host.toTypedArray();  // a copy: the tensors are freed next
    if (host !== all[0]) host.delete();
    for (const tensor of all) if (!tensor.deleted) tensor.delete();
    const ms = performance.now() - start;
    const out = document.createElement("canvas");
    out.width = out.height = size;
    out.getContext("2d").putImageData(toPixels(y, channels, size), 0, 0);
    return { url: out.toDataURL("image/png"), status: `${this.describe()}; this run ${ms.toFixed(1)} ms` };
  }
}
