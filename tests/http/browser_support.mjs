// What the browser tests share: child processes cleaned up on every exit, waiting on
// conditions, a child's output by lines, and a page of Debian's headless chromium driven over
// the DevTools protocol (Node's built-in WebSocket; no npm packages).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const sleep = ms => new Promise(r => setTimeout(r, ms));

// A test's temporary directory and children; fail() prints, cleans up and exits 1.
export function harness(name) {
  const dir = mkdtempSync(join(tmpdir(), `vigil-${name}-`));
  const children = [];
  const cleanup = () => {
    for (const c of children) { try { c.kill("SIGKILL"); } catch (e) { /* gone */ } }
    // chromium may still be writing its profile as it dies: retry, and never fail over it.
    try { rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }); } catch (e) { /* tmp */ }
  };
  const fail = message => {
    console.error(`${name}: FAIL: ${message}`);
    cleanup();
    process.exit(1);
  };
  process.on("uncaughtException", e => fail(e.stack || String(e)));
  const until = async (what, condition, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await condition();
      if (value) return value;
      if (Date.now() > deadline) fail("timed out waiting for " + what);
      await sleep(100);
    }
  };
  const start = (command, args, options = {}) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    children.push(child);
    return child;
  };
  return { dir, children, cleanup, fail, until, start };
}

// Lines of a child's output as they come.
export function lines(stream, onLine) {
  let buffer = "";
  stream.setEncoding("utf8");
  stream.on("data", chunk => {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) { onLine(buffer.slice(0, at)); buffer = buffer.slice(at + 1); }
  });
}

// Chromium, headless, on `url`: evaluate(expression) in the page, send(method, params) to
// DevTools, and the page's uncaught script errors.
export async function openPage(h, url) {
  const chromium = h.start("chromium", ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0", `--user-data-dir=${join(h.dir, "profile")}`,
    "--window-size=1600,900", "about:blank"]);
  let devtools = "";
  lines(chromium.stderr, line => {
    const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) devtools = m[1];
  });
  await h.until("chromium's DevTools endpoint", () => devtools, 60000);
  const browserPort = new URL(devtools).port;
  const targets = await (await fetch(`http://127.0.0.1:${browserPort}/json/list`)).json();
  const page = targets.find(t => t.type === "page");
  if (!page) h.fail("no page target");
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
    if (r.exceptionDetails) h.fail("page script: " + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };
  await send("Runtime.enable");
  await send("Page.enable");
  await send("Page.navigate", { url });
  return { send, evaluate, consoleErrors, close: () => ws.close() };
}
