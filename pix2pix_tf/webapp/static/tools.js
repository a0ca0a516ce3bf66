// The input tools of the page, shared by `pix2pix-tf serve` and the static web app: a
// canvas at the model's size, the facade palette's rectangles (or a pencil and an
// eraser), undo and clear, a random example, and an upload or a dropped file.
// What is on the canvas is exactly what gets translated.

import { atModelSize } from "./image.js";

const FACADE = "facade_labels";

/**
 * Builds the tools into the page's #canvas, #tools, #undo, #clear, #example, #file and #drop.
 *
 * @param {object} config the page config: image_size, tools, palette, examples (URLs).
 * @param {(message: string) => void} showError shows a message on the page.
 * @returns {{canvas: HTMLCanvasElement}} the canvas, which holds the input.
 */
export function createTools(config, showError) {
  const canvas = document.getElementById("canvas");
  canvas.width = canvas.height = config.image_size;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const note = document.getElementById("input-note");
  const labels = config.tools === FACADE;
  const state = { tool: null, undo: [], start: null, base: null, last: null, drawing: false };

  const colorOf = name => config.palette.find(p => p.name === name).color;

  function snapshot() {
    state.undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (state.undo.length > 50) state.undo.shift();
  }

  function clearCanvas() {
    ctx.fillStyle = labels ? colorOf("facade") : "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (labels) {  // sky above the building, as in the CMP labels
      ctx.fillStyle = colorOf("background");
      ctx.fillRect(0, 0, canvas.width, Math.round(canvas.height * 0.12));
    }
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: Math.floor((event.clientX - box.left) / box.width * canvas.width),
      y: Math.floor((event.clientY - box.top) / box.height * canvas.height),
    };
  }

  function selectTool(id) {
    state.tool = id;
    for (const b of document.querySelectorAll("#tools button")) b.classList.toggle("active", b.dataset.tool === id);
  }

  function buildTools() {
    const tools = document.getElementById("tools");
    const entries = labels
      ? config.palette.map(p => ({ id: p.name, label: p.name, color: p.color }))
      : [{ id: "pencil", label: "pencil" }, { id: "eraser", label: "eraser" }];
    for (const entry of entries) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = entry.label;
      button.dataset.tool = entry.id;
      if (entry.color) {
        button.style.background = entry.color;
        const [r, g, b] = [1, 3, 5].map(i => parseInt(entry.color.slice(i, i + 2), 16));
        button.style.color = 0.299 * r + 0.587 * g + 0.114 * b < 110 ? "#fff" : "#000";  // readable on dark swatches
      }
      button.addEventListener("click", () => selectTool(entry.id));
      tools.appendChild(button);
    }
    selectTool(labels ? "window" : "pencil");
  }

  function draw(event) {
    const p = point(event);
    if (labels) {  // label maps are rectangles of one class
      ctx.putImageData(state.base, 0, 0);
      ctx.fillStyle = colorOf(state.tool);
      const x = Math.min(p.x, state.start.x), y = Math.min(p.y, state.start.y);
      ctx.fillRect(x, y, Math.abs(p.x - state.start.x) + 1, Math.abs(p.y - state.start.y) + 1);
    } else {
      ctx.strokeStyle = state.tool === "eraser" ? "#ffffff" : "#000000";
      ctx.lineWidth = state.tool === "eraser" ? Math.max(3, canvas.width / 16) : Math.max(1, canvas.width / 128);
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(state.last ? state.last.x : p.x, state.last ? state.last.y : p.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
    }
    state.last = state.drawing ? p : null;
  }

  // An image of any size replaces the canvas, resized to the model's size as `pix2pix-tf predict`
  // resizes a file (image.js); the note under the canvas says what was done to it.
  async function drawImage(blob, name) {
    let image;
    try {
      image = await atModelSize(blob, canvas.width);
    } catch {
      showError(`${name} is not an image this browser can read`);
      return;
    }
    snapshot();
    ctx.putImageData(image.pixels, 0, 0);
    const resized = image.width === canvas.width && image.height === canvas.height
      ? "" : `, resized from ${image.width}×${image.height}`;
    note.textContent = `${name}${resized}`;
  }

  async function drawExample(url) {
    const name = decodeURIComponent(url.split("/").pop());
    let reply;
    try {
      reply = await fetch(url);
    } catch (error) {
      showError(`example ${name} could not be fetched (${error.message})`);
      return;
    }
    if (!reply.ok) { showError(`example ${name}: HTTP ${reply.status}`); return; }
    await drawImage(await reply.blob(), name);
  }

  canvas.addEventListener("pointerdown", event => {
    snapshot();
    state.drawing = true;
    state.start = point(event);
    state.base = ctx.getImageData(0, 0, canvas.width, canvas.height);
    canvas.setPointerCapture(event.pointerId);
    draw(event);
  });
  canvas.addEventListener("pointermove", event => { if (state.drawing) draw(event); });
  canvas.addEventListener("pointerup", () => { state.drawing = false; state.last = null; });

  document.getElementById("undo").addEventListener("click", () => {
    const previous = state.undo.pop();
    if (previous) ctx.putImageData(previous, 0, 0);
  });
  document.getElementById("clear").addEventListener("click", () => {
    snapshot();
    clearCanvas();
    note.textContent = "";
  });
  document.getElementById("example").addEventListener("click", () => {
    const examples = config.examples;
    if (!examples.length) { showError("this model ships no examples: draw or upload an image"); return; }
    drawExample(examples[Math.floor(Math.random() * examples.length)]);
  });
  document.getElementById("file").addEventListener("change", event => {
    const file = event.target.files[0];
    event.target.value = "";  // so that choosing the same file again loads it again
    if (file) drawImage(file, file.name);
  });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", event => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", event => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) drawImage(file, file.name);
  });

  buildTools();
  clearCanvas();
  if (config.examples.length) drawExample(config.examples[0]);
  return { canvas };
}
