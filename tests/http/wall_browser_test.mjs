// The wall page in a real browser: Debian's chromium, headless, driven over the DevTools
// protocol (Node's built-in WebSocket; no npm packages).
//
//   node --experimental-websocket wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png
//
// Starts `vigil run` with three live synthetic cameras and the API on a free port, opens the
// wall, and checks: one tile per camera, every tile's picture updates, a camera added through
// the API appears without a reload, the grid fits the window. Saves a screenshot. Exit 0 when
// every check holds; otherwise prints what failed and exits 1.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [vigilBinary, model, screenshotPath] = process.argv.slice(2);
if (!vigilBinary || !model || !screenshotPath) {
  console.error("usage: wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "vigil-wall-"));
const children = [];
function cleanup() {
  for (const c of children) { try { c.kill("SIGKILL"); } catch (e) { /* gone */ } }
  // chromium may still be writing its profile as it dies: retry, and never fail over it.
  try { rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }); } catch (e) { /* tmp */ }
}
function fail(message) {
  console.error("wall test: FAIL: " + message);
  cleanup();
  process.exit(1);
}
process.on("uncaughtException", e => fail(e.stack || String(e)));
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function until(what, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) fail("timed out waiting for " + what);
    await sleep(100);
  }
}

// Lines of a child's output as they come.
function lines(stream, onLine) {
  let buffer = "";
  stream.setEncoding("utf8");
  stream.on("data", chunk => {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) { onLine(buffer.slice(0, at)); buffer = buffer.slice(at + 1); }
  });
}

// 1. vigil with three cameras.
const cameras = ["lobby", "lounge", "stairs"].map((id, i) =>
  `  - {id: ${id}, source: {type: synthetic, fps: 10, width: 640, height: 360}}`).join("\n");
const config = join(dir, "wall.yaml");
writeFileSync(config, `models:\n  faces: {path: "${model}", input_size: 128, max_batch: 8}\ncameras:\n${cameras}\n` +
  `http: {listen: "127.0.0.1:0", token: wall-test}\nstatus_interval_s: 0\nlog_level: warn\n`);
const vigil = spawn(vigilBinary, ["run", "--config", config, "--duration", "300"], { stdio: ["ignore", "pipe", "pipe"] });
children.push(vigil);
let port = 0;
lines(vigil.stdout, line => {
  const m = line.match(/API at http:\/\/127\.0\.0\.1:(\d+)\//);
  if (m) port = Number(m[1]);
});
lines(vigil.stderr, line => console.error("vigil: " + line));
vigil.on("exit", code => { if (!port) fail("vigil exited (" + code + ") before serving"); });
await until("vigil's API line", () => port, 60000);
const base = `http://127.0.0.1:${port}`;
await until("every camera live", async () => (await fetch(base + "/readyz")).status === 200, 60000);

// 2. chromium, headless, with the DevTools protocol on a free port.
const chromium = spawn("chromium", ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
  "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0", `--user-data-dir=${join(dir, "profile")}`,
  "--window-size=1600,900", "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });
children.push(chromium);
let devtools = "";
lines(chromium.stderr, line => {
  const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
  if (m) devtools = m[1];
});
await until("chromium's DevTools endpoint", () => devtools, 60000);
const browserPort = new URL(devtools).port;
const targets = await (await fetch(`http://127.0.0.1:${browserPort}/json/list`)).json();
const page = targets.find(t => t.type === "page");
if (!page) fail("no page target");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
let nextId = 1;
const pending = new Map();
const consoleErrors = [];
ws.onmessage = m => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
  } else if (msg.method === "Runtime.exceptionThrown") {
    consoleErrors.push(msg.params.exceptionDetails.text + " " + JSON.stringify(msg.params.exceptionDetails.exception || {}));
  }
};
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject });
  ws.send(JSON.stringify({ id, method, params }));
});
const evaluate = async expression => {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) fail("page script: " + JSON.stringify(r.exceptionDetails));
  return r.result.value;
};
await send("Runtime.enable");
await send("Page.enable");
await send("Page.navigate", { url: base + "/" });

// 3. The checks.
const tiles = () => evaluate(`[...document.querySelectorAll(".tile")].map(t => ({id: t.dataset.camera,
  state: t.dataset.state, updates: Number(t.dataset.updates), w: t.clientWidth, h: t.clientHeight,
  img: t.querySelector("img").naturalWidth}))`);
await until("one tile per camera", async () => (await tiles()).length === 3, 20000);
const first = await tiles();
const ids = first.map(t => t.id).sort().join(",");
if (ids !== "lobby,lounge,stairs") fail("tiles " + ids);
await until("every tile's picture to update at least 3 times", async () =>
  (await tiles()).every(t => t.updates >= 3 && t.img > 0 && t.state === "live"), 30000);

// A camera added through the API appears without a reload (and the page is the same page).
await evaluate("window.__sameDocument = true");
const added = await fetch(base + "/api/v1/cameras", {
  method: "POST", headers: { "Authorization": "Bearer wall-test", "Content-Type": "application/json" },
  body: JSON.stringify({ id: "porch", source: { type: "synthetic", fps: 10, width: 640, height: 360 } }) });
if (added.status !== 201) fail("POST camera: " + added.status + " " + await added.text());
await until("the new camera's tile with a picture", async () => {
  const t = (await tiles()).find(x => x.id === "porch");
  return t && t.updates >= 1 && t.img > 0;
}, 30000);
if (!(await evaluate("window.__sameDocument === true"))) fail("the page reloaded");

// The grid fits the window: every tile inside the viewport, none with zero size.
const fits = await evaluate(`(() => { const g = document.getElementById("grid").getBoundingClientRect();
  return [...document.querySelectorAll(".tile")].every(t => { const r = t.getBoundingClientRect();
    return r.width > 100 && r.height > 60 && r.bottom <= g.bottom + 1 && r.right <= g.right + 1; }); })()`);
if (!fits) fail("tiles overflow the window: " + JSON.stringify(await tiles()));
// Events arrived over SSE (at least the cameras going live).
await until("events in the panel", async () => Number(await evaluate("document.body.dataset.events || 0")) >= 1, 20000);
if (consoleErrors.length) fail("script errors: " + consoleErrors.join("; "));

const shot = await send("Page.captureScreenshot", { format: "png" });
writeFileSync(screenshotPath, Buffer.from(shot.data, "base64"));
const final = await tiles();
console.log(`wall test: ok: ${final.length} tiles (${final.map(t => `${t.id} ${t.updates} updates`).join(", ")}), ` +
            `screenshot ${screenshotPath}`);
ws.close();
cleanup();
process.exit(0);
