// The wall page in a real browser: Debian's chromium, headless, driven over the DevTools
// protocol (Node's built-in WebSocket; no npm packages).
//
//   node --experimental-websocket wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png
//
// Starts `vigil run` with three live synthetic cameras and the API on a free port, opens the
// wall, and checks: one tile per camera, every tile's picture updates, a camera added through
// the API appears without a reload, the grid fits the window. Saves a screenshot. Exit 0 when
// every check holds; otherwise prints what failed and exits 1.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { harness, lines, openPage } from "./browser_support.mjs";

const [vigilBinary, model, screenshotPath] = process.argv.slice(2);
if (!vigilBinary || !model || !screenshotPath) {
  console.error("usage: wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png");
  process.exit(2);
}
const h = harness("wall test");
const { dir, fail, until } = h;

// 1. vigil with three cameras.
const cameras = ["lobby", "lounge", "stairs"].map((id, i) =>
  `  - {id: ${id}, source: {type: synthetic, fps: 10, width: 640, height: 360}}`).join("\n");
const config = join(dir, "wall.yaml");
writeFileSync(config, `models:\n  faces: {path: "${model}", input_size: 128, max_batch: 8}\ncameras:\n${cameras}\n` +
  `http: {listen: "127.0.0.1:0", token: wall-test}\nstatus_interval_s: 0\nlog_level: warn\n`);
const vigil = h.start(vigilBinary, ["run", "--config", config, "--duration", "300"]);
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

// 2. chromium, headless, on the wall.
const { send, evaluate, consoleErrors, close } = await openPage(h, base + "/");

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
close();
h.cleanup();
process.exit(0);
