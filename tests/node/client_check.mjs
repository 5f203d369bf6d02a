// Connects the official socket.io-client (v4, pinned in package.json) to a live server and checks the
// basics a browser or React Native app relies on. Prints one JSON line; exit code 0 only if all passed.
//
//   node client_check.mjs <server-url> <default|websocket>
//
//   default   : the client's own default, long-polling first and then the upgrade to websocket
//               (must see engine "upgrade" with transport "websocket")
//   websocket : websocket only, from the first request
//
// Then: emit `ping_server` with an ack (the reply must name an instance), and disconnect cleanly.

import { io } from "socket.io-client";

const [url, mode = "default"] = process.argv.slice(2);
const OVERALL_TIMEOUT_MS = 15000;
const ACK_TIMEOUT_MS = 5000;
const UPGRADE_TIMEOUT_MS = 5000;

const result = {
  ok: false,
  mode,
  initial_transport: null,
  upgraded_to: null,
  transport_at_ack: null,
  ack: null,
  disconnect_reason: null,
  error: null,
};

function finish(error) {
  if (error) result.error = String(error);
  result.ok = !result.error;
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

if (!url || !["default", "websocket"].includes(mode)) {
  finish("usage: node client_check.mjs <server-url> <default|websocket>");
}

setTimeout(() => finish(`timed out after ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();

const socket = io(url, {
  // Leave `transports` unset in default mode so the library's real default is what gets tested.
  ...(mode === "websocket" ? { transports: ["websocket"] } : {}),
  reconnection: false,
  timeout: 5000,
});

// Settles when the engine reports its upgrade (listened for from the engine's "open", so an upgrade that
// completes before the Socket.IO "connect" handler runs is not missed).
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

function withTimeout(promise, ms, message) {
  let timer;
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

socket.on("connect_error", (err) => finish(`connect_error: ${err.message}`));

socket.on("connect", async () => {
  try {
    if (mode === "default") {
      if (result.initial_transport !== "polling") throw new Error("default mode did not start with polling");
      await withTimeout(upgrade, UPGRADE_TIMEOUT_MS, "no upgrade to websocket");
      if (result.upgraded_to !== "websocket") throw new Error(`upgraded to ${result.upgraded_to}`);
    } else if (result.initial_transport !== "websocket") {
      throw new Error(`websocket mode opened with ${result.initial_transport}`);
    }

    const sentAt = Date.now();
    const reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("ping_server", { sent_at: sentAt });
    result.transport_at_ack = socket.io.engine.transport.name;
    result.ack = { ...reply, round_trip_ms: Date.now() - sentAt };
    if (typeof reply?.instance !== "string" || !reply.instance) throw new Error("ack without an instance");

    socket.once("disconnect", (reason) => {
      result.disconnect_reason = reason;
      finish(reason === "io client disconnect" ? null : `unexpected disconnect reason ${reason}`);
    });
    socket.disconnect();
  } catch (err) {
    finish(err);
  }
});
