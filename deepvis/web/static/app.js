// deepvis serve: the page side. The server draws every frame (the same code as the window);
// this file only paints the changed pieces it sends, and sends keys, clicks and uploads.
"use strict";

const token = new URLSearchParams(location.search).get("token");
function url(path) {                       // relative to the page, with the token if any
  const u = new URL(path, location.href);
  if (token) u.searchParams.set("token", token);
  return u;
}

const canvas = document.getElementById("frame");
const ctx = canvas.getContext("2d", { alpha: false });
const $ = (id) => document.getElementById(id);
const state = window.deepvis = {
  hello: null, header: null, frames: 0, errors: [], hover: "", ended: "",
  keysSent: 0, keyTimes: [], latencies: [], netFrames: [],
  frameDataURL: () => canvas.toDataURL("image/png"),
};
const uploads = [];                        // object URLs of this page's uploads
const panelURLs = {};

const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down",
               Escape: "esc", Enter: "enter", PageUp: "pgup", PageDown: "pgdn" };

const wsURL = url("ws");
wsURL.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(wsURL);
ws.binaryType = "arraybuffer";
let painting = Promise.resolve();
ws.onmessage = (event) => {
  if (typeof event.data === "string") return onText(JSON.parse(event.data));
  const data = event.data;
  painting = painting.then(() => paint(data)).catch((e) => showError(String(e)));
};
ws.onclose = () => { if (!state.ended) end("connection closed: reload the page"); };

function send(msg) { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }

function onText(msg) {
  if (msg.type === "hello") return onHello(msg);
  if (msg.type === "hover") { state.hover = msg.text; $("hover").textContent = msg.text;
                              return hoverDone(); }
  if (msg.type === "error") { showError(msg.message); if (msg.fatal) end(msg.message); return; }
  if (msg.type === "ended") end(msg.message);
}

function showError(text) {
  state.errors.push(text);
  $("error").textContent = text;
  setTimeout(() => { if ($("error").textContent === text) $("error").textContent = ""; }, 6000);
}

function end(text) { state.ended = text; $("ended").textContent = text; $("ended").hidden = false; }

function onHello(hello) {
  state.hello = hello;
  canvas.width = hello.width; canvas.height = hello.height;
  $("video-hint").hidden = !hello.video;
  const nav = $("pane-downloads");
  nav.append("Download a pane: ");
  for (const [name, rect] of Object.entries(hello.panes)) {
    const b = document.createElement("button");
    b.textContent = name.replace("caffevis_", "");
    b.onclick = () => downloadPane(name, rect);
    nav.append(b);
  }
  const whole = document.createElement("button");
  whole.textContent = "whole frame";
  whole.onclick = () => downloadPane("frame", [0, 0, canvas.width, canvas.height]);
  nav.append(whole);
  hello.inputs.forEach((name, i) => addThumb(url(`thumbs/${i}`), name, i));
  const table = $("keys").querySelector("table");
  for (const [keys, help] of hello.keys) {
    const row = table.insertRow();
    row.insertCell().textContent = keys; row.insertCell().textContent = help;
  }
  canvas.focus();
}

async function paint(buffer) {
  const size = new DataView(buffer).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, size)));
  const start = 4 + size;
  const blob = (name) => {
    const [offset, length] = header.blobs[name];
    return new Blob([new Uint8Array(buffer, start + offset, length)], { type: "image/png" });
  };
  const pieces = await Promise.all(header.rects.map((r, k) => createImageBitmap(
    blob("r" + k), { colorSpaceConversion: "none", premultiplyAlpha: "none" })));
  if (canvas.width !== header.width || canvas.height !== header.height) {
    canvas.width = header.width; canvas.height = header.height;
  }
  header.rects.forEach((r, k) => { ctx.drawImage(pieces[k], r[0], r[1]); pieces[k].close(); });
  const now = performance.now();
  while (state.latencies.length < header.keys && state.keyTimes.length > state.latencies.length)
    state.latencies.push(now - state.keyTimes[state.latencies.length]);
  if (header.net_frame !== null && header.net_frame !== state.lastNet) {
    state.lastNet = header.net_frame; state.netFrames.push(performance.timeOrigin + now);
  }
  state.header = header; state.frames += 1;
  $("status").textContent = header.status;
  updatePanels(header, blob);
  markThumb(header.input.index);
}

function updatePanels(header, blob) {
  for (const fig of document.querySelectorAll("#panels figure")) {
    const name = fig.dataset.panel, unit = fig.dataset.unit;
    const img = fig.querySelector("img"), link = fig.querySelector("a");
    if (name) {
      const shown = header.panels.includes(name);
      fig.hidden = !shown;
      if (shown && header.blobs[name]) {
        if (panelURLs[name]) URL.revokeObjectURL(panelURLs[name]);
        panelURLs[name] = URL.createObjectURL(blob(name));
        img.src = link.href = panelURLs[name];
        link.download = `deepvis-${name}-${header.state.layer}-${header.state.unit}.png`;
      }
    } else {
      const src = header.units[unit];
      fig.hidden = !src;
      if (src) {
        const full = url(src).href;
        if (img.src !== full) { img.src = link.href = full; }
        link.download = src.split("/").pop();
      }
    }
  }
}

function downloadPane(name, [x, y, w, h]) {
  const crop = document.createElement("canvas");
  crop.width = w; crop.height = h;
  crop.getContext("2d").drawImage(canvas, x, y, w, h, 0, 0, w, h);
  crop.toBlob((png) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(png);
    const s = state.header ? state.header.state : { layer: "", unit: "" };
    a.download = `deepvis-${name}-${s.layer}-${s.unit}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}

// -- keys ------------------------------------------------------------------------------
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.target.tagName === "INPUT") return;
  const name = KEYS[e.key] || (/^[A-Za-z0-9]$/.test(e.key) ? e.key : null);
  if (!name || state.ended) return;
  e.preventDefault();
  state.keysSent += 1; state.keyTimes.push(performance.now());
  send({ type: "key", key: name });
});

// -- mouse: click a layer name or a tile; hover a tile ----------------------------------
function framePoint(e) {
  const r = canvas.getBoundingClientRect();
  return { x: Math.floor((e.clientX - r.left) * canvas.width / r.width),
           y: Math.floor((e.clientY - r.top) * canvas.height / r.height) };
}
canvas.addEventListener("click", (e) => { canvas.focus(); send({ type: "click", ...framePoint(e) }); });
let hoverBusy = false, hoverNext = null;
canvas.addEventListener("mousemove", (e) => {
  hoverNext = framePoint(e);
  if (!hoverBusy) hoverDone();
});
function hoverDone() {
  hoverBusy = hoverNext !== null;
  if (hoverNext) { send({ type: "hover", ...hoverNext }); hoverNext = null; }
}

// -- inputs: thumbnails, upload, drag and drop -------------------------------------------
function addThumb(src, name, index) {
  const img = document.createElement("img");
  img.src = src; img.title = name; img.dataset.index = index;
  img.onclick = () => { send({ type: "input", index }); canvas.focus(); };
  $("thumbs").append(img);
}
function markThumb(index) {
  for (const img of $("thumbs").children) img.classList.toggle("current", +img.dataset.index === index);
}
async function upload(file) {
  if (!state.hello) return;
  const target = url("upload");
  target.searchParams.set("client", state.hello.client);
  target.searchParams.set("name", file.name || "upload");
  const response = await fetch(target, { method: "POST", body: file });
  if (!response.ok) return showError(`upload refused: ${await response.text()}`);
  const shown = URL.createObjectURL(file);
  uploads.push(shown);
  addThumb(shown, file.name, state.hello.inputs.length + uploads.length - 1);
}
$("upload").addEventListener("change", (e) => { for (const f of e.target.files) upload(f); });
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (e) => {
  e.preventDefault(); document.body.classList.remove("dragging");
  for (const f of e.dataTransfer.files) upload(f);
});
