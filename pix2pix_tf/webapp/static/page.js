// The page of `pix2pix-tf serve` and of the static web app (`pix2pix-tf web`): the input
// tools (tools.js) and a runner per place the model can run, "on the server" (run_server.js)
// and "in this browser" (run_browser.js). The page config is written into the page by
// serve, or read in the static app from its manifest, the file the page's data-manifest names.

import { createTools } from "./tools.js";

const $ = id => document.getElementById(id);
const here = name => new URL(name, import.meta.url).href;  // a path of the web app's layout, as a URL

function showError(message) { $("error").textContent = message || ""; }

function showStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

async function loadConfig() {
  const element = $("page-config");
  const embedded = element.textContent.trim();
  if (embedded) return JSON.parse(embedded);
  const manifest = element.dataset.manifest;
  let reply;
  try {
    reply = await fetch(here(manifest));
  } catch (error) {
    throw new Error(`could not fetch ${manifest}: ${error.message}`);
  }
  if (!reply.ok) {
    throw new Error(`${manifest}: HTTP ${reply.status}; this folder is not a whole web app: write it again with pix2pix-tf web`);
  }
  let config;
  try {
    config = await reply.json();
  } catch (error) {
    throw new Error(`${manifest} is damaged (${error.message}): write the web app again with pix2pix-tf web`);
  }
  const needed = ["name", "image_size", "channels", "tools", "palette", "examples", "runners", "variants", "runtime"];
  for (const key of needed) {
    if (config?.[key] === undefined) {
      throw new Error(`${manifest} is damaged (it has no "${key}"): write the web app again with pix2pix-tf web`);
    }
  }
  return config;
}

function describe(config) {
  const size = `${config.image_size}×${config.image_size}`;
  $("title").textContent = `${config.name} (${size}${config.tools === "facade_labels" ? ", facade labels → photo" : ""})`;
  const tools = (config.tools === "facade_labels"
    ? "Pick a class and drag rectangles, as in the CMP Facades label maps; or upload or drop a label map"
    : "Draw with the pencil (eraser to fix), or upload or drop an image") +
    ` (resized to ${size} as pix2pix-tf predict resizes it).`;
  const browser = config.runners.includes("browser")
    ? ` In this browser the model runs at its own size, ${size} (the .tflite files are fixed at it; ` +
      "native size is not offered); nothing leaves this page."
    : "";
  $("help").textContent = tools + browser;
}

/** The runners the page offers, each made on first use. */
class Runners {
  constructor(config) {
    this.config = config;
    this.made = new Map();
    this.current = config.runners[0];
  }

  // The browser runner loads its runtime when first chosen: a visitor of the server's
  // page who never picks it downloads none of it. A runner that failed to start is
  // made again on the next use.
  get(name) {
    if (!this.made.has(name)) {
      const made = this.make(name);
      made.catch(() => this.made.delete(name));
      this.made.set(name, made);
    }
    return this.made.get(name);
  }

  async make(name) {
    if (name === "server") {
      const { ServerRunner } = await import("./run_server.js");
      return new ServerRunner(this.config);
    }
    const { BrowserRunner } = await import("./run_browser.js");
    const runner = new BrowserRunner(this.config, here);
    await runner.start();
    return runner;
  }
}

function fail(error) {
  showError(error instanceof Error ? error.message : String(error));
  showStatus("", "error");
}

// Loads `variant` in the browser runner and says on the page what it runs on, or why not.
async function loadVariant(runners, variant) {
  showError("");
  showStatus(`loading ${variant} in this browser…`, "loading");
  try {
    const runner = await runners.get("browser");
    showStatus(await runner.load(variant), "ready");
  } catch (error) {
    fail(error);
  }
}

function offerVariants(config, runners) {
  const select = $("variant");
  for (const entry of config.variants) {
    const option = document.createElement("option");
    option.value = entry.variant;
    option.textContent = `${entry.variant} (${(entry.bytes / 1e6).toFixed(1)} MB)`;
    select.appendChild(option);
  }
  // float16 is the export's default mobile model: half float32's bytes, within its 40 dB gate of it.
  select.value = config.variants.some(v => v.variant === "float16") ? "float16" : config.variants[0]?.variant ?? "";
  select.addEventListener("change", () => loadVariant(runners, select.value));
}

function offerRunners(config, runners) {
  const choice = $("runner");
  choice.hidden = config.runners.length < 2 && !config.browser_unavailable;
  for (const input of choice.querySelectorAll("input")) {
    input.checked = input.value === runners.current;
    input.disabled = !config.runners.includes(input.value);
    input.addEventListener("change", () => {
      runners.current = input.value;
      $("variant-choice").hidden = input.value !== "browser";
      showError("");
      if (input.value === "browser") loadVariant(runners, $("variant").value);
      else showStatus("", "ready");
    });
  }
  if (config.browser_unavailable) {
    choice.querySelector('input[value="browser"]').parentElement.title = config.browser_unavailable;
  }
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    fail(error);
    return;
  }
  config.examples = config.examples.map(here);
  describe(config);
  const tools = createTools(config, showError);
  const runners = new Runners(config);
  offerRunners(config, runners);
  if (config.runners.includes("browser")) offerVariants(config, runners);
  if (runners.current === "browser") {
    $("variant-choice").hidden = false;
    loadVariant(runners, $("variant").value);
  } else {
    showStatus(config.browser_unavailable ? `in this browser: ${config.browser_unavailable}` : "", "ready");
  }

  let runs = 0;
  $("translate").addEventListener("click", async () => {
    showError("");
    const button = $("translate");
    button.disabled = true;
    try {
      const runner = await runners.get(runners.current);
      const { url, status } = await runner.translate(tools.canvas);
      const output = $("output");
      output.src = url;
      output.dataset.runs = String(++runs);
      const link = $("download");
      link.href = url;
      link.hidden = false;
      showStatus(status, "ready");
    } catch (error) {
      fail(error);
    } finally {
      button.disabled = false;
    }
  });
}

main();
