// "On the server": the drawing goes to `pix2pix-tf serve` through the public API only,
// TensorFlow Serving's POST /v1/models/NAME:predict with the translate_bytes signature
// ({"b64": PNG} in and out), which resizes and converts as the Python Translator does.

/** A runner that translates on the server that served the page. */
export class ServerRunner {
  constructor(config) {
    this.config = config;
  }

  /**
   * Translates the canvas.
   *
   * @param {HTMLCanvasElement} canvas the input, at the model's size.
   * @returns {Promise<{url: string, status: string}>} the translation as a PNG data URL, and a line about the run.
   */
  async translate(canvas) {
    const png = canvas.toDataURL("image/png").split(",")[1];
    const body = { signature_name: "translate_bytes", instances: [{ b64: png }] };
    const start = performance.now();
    let reply;
    try {
      reply = await fetch(`/v1/models/${this.config.name}:predict`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
    } catch (error) {
      throw new Error(`could not reach the server: ${error.message}`);
    }
    const text = await reply.text();
    let data;
    try { data = JSON.parse(text); } catch { data = { error: text }; }
    if (!reply.ok) throw new Error(`the server said (${reply.status}): ${data.error}`);
    const ms = performance.now() - start;
    return { url: "data:image/png;base64," + data.predictions[0].b64, status: `on the server: ${ms.toFixed(1)} ms (with the request)` };
  }
}
