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

import { MODES, connect, disconnectAndFinish, expectTransports, startCheck, watchTransport } from "./lib.mjs";

const [url, mode = "default"] = process.argv.slice(2);
const ACK_TIMEOUT_MS = 5000;

const { result, finish } = startCheck({
  fields: {
    mode,
    initial_transport: null,
    upgraded_to: null,
    transport_at_ack: null,
    ack: null,
    disconnect_reason: null,
  },
  valid: url && MODES.includes(mode),
  usage: "usage: node client_check.mjs <server-url> <default|websocket>",
  timeoutMs: 15000,
});

const socket = connect(url, mode);
const upgrade = watchTransport(socket, result);

socket.on("connect_error", (err) => finish(`connect_error: ${err.message}`));

socket.on("connect", async () => {
  try {
    await expectTransports(mode, result, upgrade);

    const sentAt = Date.now();
    const reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("ping_server", { sent_at: sentAt });
    result.transport_at_ack = socket.io.engine.transport.name;
    result.ack = { ...reply, round_trip_ms: Date.now() - sentAt };
    if (typeof reply?.instance !== "string" || !reply.instance) throw new Error("ack without an instance");

    disconnectAndFinish(socket, result, finish);
  } catch (err) {
    finish(err);
  }
});
