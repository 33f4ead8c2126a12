// The wall of a cluster's ingest node shows every camera of the cluster, in a real browser
// (Debian's headless chromium over the DevTools protocol):
//
//   node --experimental-websocket cluster_wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png
//
// Starts a redis-server on a free loopback port, one `vigil worker` and two `vigil ingest`
// nodes (a and b) sharing four live synthetic cameras, opens a's wall and checks: four tiles,
// two of them b's (pictures from b's API), every tile's picture updates; then b is killed
// (SIGKILL) and all four tiles are a's own and update again. Saves a screenshot. Exit 0 when
// every check holds; otherwise prints what failed and exits 1.
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { harness, lines, openPage } from "./browser_support.mjs";

const [vigilBinary, model, screenshotPath] = process.argv.slice(2);
if (!vigilBinary || !model || !screenshotPath) {
  console.error("usage: cluster_wall_browser_test.mjs VIGIL_BINARY MODEL SCREENSHOT.png");
  process.exit(2);
}
const h = harness("cluster wall test");
const { dir, fail, until } = h;

const freePort = () => new Promise(resolve => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// 1. Redis, a worker, two ingest nodes.
const redisPort = await freePort();
const redis = h.start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
let redisReady = false;
lines(redis.stdout, line => { if (line.includes("Ready to accept connections")) redisReady = true; });
await until("redis to accept connections", () => redisReady, 30000);
const url = `redis://127.0.0.1:${redisPort}`;
const cameras = [0, 1, 2, 3].map(i =>
  `  - {id: live${i}, source: {type: synthetic, fps: 5, width: 320, height: 180}}`).join("\n");
const config = join(dir, "cluster.yaml");
writeFileSync(config, `models:\n  faces: {path: "${model}", input_size: 128, max_batch: 8}\ncameras:\n${cameras}\n` +
  `http: {listen: "127.0.0.1:0"}\ncluster: {lease_ms: 2000, claim_idle_ms: 300, reply_timeout_ms: 1500}\n` +
  `status_interval_s: 0\nlog_level: warn\n`);

function spawnVigil(args, onLine) {
  const child = h.start(vigilBinary, args);
  lines(child.stdout, onLine);
  lines(child.stderr, line => console.error(`${args[0]}: ${line}`));
  return child;
}
let serving = false;
spawnVigil(["worker", "--config", config, "--redis", url, "--name", "w", "--threads", "1", "--http", "off"],
           line => { if (line.includes(" serving ")) serving = true; });
await until("the worker to serve", () => serving, 60000);
const ports = {};
const nodes = {};
for (const name of ["a", "b"]) {
  nodes[name] = spawnVigil(["ingest", "--config", config, "--redis", url, "--node", name], line => {
    const m = line.match(/wall at http:\/\/127\.0\.0\.1:(\d+)\//);
    if (m) ports[name] = Number(m[1]);
  });
  await until(`node ${name}'s wall line`, () => ports[name], 60000);
}
const base = `http://127.0.0.1:${ports.a}`;
const owners = async () => {
  const r = await fetch(base + "/api/v1/cluster/cameras");
  if (r.status !== 200) fail("GET /api/v1/cluster/cameras: " + r.status);
  const body = await r.json();
  if (body.node !== "a") fail("node " + body.node);
  return Object.fromEntries(body.cameras.map(c => [c.id, c.owner]));
};
await until("two cameras on each node", async () => {
  const o = Object.values(await owners());
  return o.length === 4 && o.filter(x => x === "a").length === 2 && o.filter(x => x === "b").length === 2;
}, 60000);

// 2. chromium on a's wall.
const { send, evaluate, consoleErrors, close } = await openPage(h, base + "/");
const tiles = () => evaluate(`[...document.querySelectorAll(".tile")].map(t => ({id: t.dataset.camera,
  owner: t.dataset.owner || "a", state: t.dataset.state, updates: Number(t.dataset.updates),
  img: t.querySelector("img").naturalWidth, src: t.querySelector("img").src}))`);
await until("four tiles, two of them b's", async () => {
  const t = await tiles();
  return t.length === 4 && t.filter(x => x.owner === "b").length === 2;
}, 30000);
await until("every tile's picture to update at least 3 times", async () =>
  (await tiles()).every(t => t.updates >= 3 && t.img > 0 && t.state === "live"), 60000);
for (const t of await tiles()) {
  if (t.owner === "b" && !t.src.startsWith(`http://127.0.0.1:${ports.b}/api/v1/cameras/${t.id}/snapshot.jpg`)) {
    fail(`${t.id}'s picture is not from b: ${t.src}`);
  }
}

// 3. b dies: its cameras move to a, and the wall shows them as a's own.
const before = Object.fromEntries((await tiles()).map(t => [t.id, t.updates]));
nodes.b.kill("SIGKILL");
await until("all four cameras a's own on the wall, updating", async () => {
  const t = await tiles();
  return t.length === 4 && t.every(x => x.owner === "a" && x.state === "live" && x.updates >= before[x.id] + 3 && x.src.startsWith("blob:"));
}, 60000);
if (consoleErrors.length) fail("script errors: " + consoleErrors.join("; "));

const shot = await send("Page.captureScreenshot", { format: "png" });
writeFileSync(screenshotPath, Buffer.from(shot.data, "base64"));
console.log(`cluster wall test: ok: ${(await tiles()).map(t => `${t.id} ${t.updates} updates`).join(", ")}, screenshot ${screenshotPath}`);
close();
h.cleanup();
process.exit(0);
