// Shared by the *_check.mjs scripts: each connects the official socket.io-client (v4, pinned in package.json)
// to a live server, fills in a result object and prints it as one JSON line; exit code 0 only if it passed.
//
//   default   : the client's own default transports, long-polling first and then the upgrade to websocket
//   websocket : websocket only, from the first request

import { io } from "socket.io-client";

export const MODES = ["default", "websocket"];
const CONNECT_TIMEOUT_MS = 5000;
const UPGRADE_TIMEOUT_MS = 5000;

// The check's result ({ok, ...fields, error}) and finish(error): prints it and exits, 0 only without an error.
// Exits at once with `usage` unless `valid`; finishes with a time-out error after `timeoutMs`.
export function startCheck({ fields, valid, usage, timeoutMs }) {
  const result = { ok: false, ...fields, error: null };
  function finish(error) {
    if (error) result.error = String(error);
    result.ok = !result.error;
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(result.ok ? 0 : 1);
  }
  if (!valid) finish(usage);
  setTimeout(() => finish(`timed out after ${timeoutMs} ms`), timeoutMs).unref();
  return { result, finish };
}

// A socket for `url` in `mode`, never reconnecting; `options` adds to the client's (auth, query, ...).
export function connect(url, mode, options = {}) {
  return io(url, {
    // Leave `transports` unset in default mode so the library's real default is what gets tested.
    ...(mode === "websocket" ? { transports: ["websocket"] } : {}),
    ...options,
    reconnection: false,
    timeout: CONNECT_TIMEOUT_MS,
  });
}

// Records the engine's first transport and its upgrade in `result` (initial_transport, upgraded_to); the
// promise settles on the upgrade. Listened for from the engine's "open", so an upgrade that completes before
// the Socket.IO "connect" handler runs is not missed.
export function watchTransport(socket, result) {
  let upgradeSeen;
  const upgrade = new Promise((resolve) => {
    upgradeSeen = resolve;
  });
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    result.initial_transport = engine.transport.name;
    engine.on("upgrade", (transport) => {
      result.upgraded_to = transport.name;
      upgradeSeen();
    });
  });
  return upgrade;
}

export function withTimeout(promise, ms, message) {
  let timer;
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

// Default mode must open with polling and upgrade to websocket; websocket mode must open with websocket.
export async function expectTransports(mode, result, upgrade) {
  if (mode === "default") {
    if (result.initial_transport !== "polling") throw new Error("default mode did not start with polling");
    await withTimeout(upgrade, UPGRADE_TIMEOUT_MS, "no upgrade to websocket");
    if (result.upgraded_to !== "websocket") throw new Error(`upgraded to ${result.upgraded_to}`);
  } else if (result.initial_transport !== "websocket") {
    throw new Error(`websocket mode opened with ${result.initial_transport}`);
  }
}

// Disconnects, records the reason in result.disconnect_reason and finishes: passed only on the client's own.
export function disconnectAndFinish(socket, result, finish) {
  socket.once("disconnect", (reason) => {
    result.disconnect_reason = reason;
    finish(reason === "io client disconnect" ? null : `unexpected disconnect reason ${reason}`);
  });
  socket.disconnect();
}
