// The official socket.io-client (v4, pinned in package.json) on the "/voice" namespace, as the browser page uses
// it: connect, `status`, `authenticate` with a PIN, a typed request (`text` -> `response` + `todos`), then a
// spoken one sent as binary (`audio` -> `transcript` + `response` with audio). Prints one JSON line; exit code 0
// only if every step passed.
//
//   node voice_check.mjs <server-url> <default|websocket> <user> <pin> <wav-file>
//
//   default   : the client's own default, long-polling first and then the upgrade to websocket
//   websocket : websocket only, from the first request

import { readFileSync } from "node:fs";
import { MODES, connect, disconnectAndFinish, expectTransports, startCheck, watchTransport } from "./lib.mjs";

const [url, mode = "default", user, pin, wavPath] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 15000;

const { result, finish } = startCheck({
  fields: {
    mode,
    initial_transport: null,
    upgraded_to: null,
    transport_at_end: null,
    status: null,
    authenticated: null,
    text_response: null,
    todos: null,
    transcript: null,
    audio_response: null,
    errors: [],
    disconnect_reason: null,
  },
  valid: url && MODES.includes(mode) && user && pin && wavPath,
  usage: "usage: node voice_check.mjs <server-url> <default|websocket> <user> <pin> <wav-file>",
  timeoutMs: 30000,
});

const socket = connect(url + "/voice", mode);
const upgrade = watchTransport(socket, result);

// Every event, queued until a step takes it, so nothing emitted before its step is awaited is missed.
const queues = {};
const waiters = {};
for (const event of ["status", "authenticated", "auth_error", "transcript", "response", "todos", "error"]) {
  queues[event] = [];
  socket.on(event, (data) => {
    if (event === "error") result.errors.push(data);
    const waiter = (waiters[event] || []).shift();
    if (waiter) waiter(data);
    else queues[event].push(data);
  });
}

function next(event) {
  if (queues[event].length) return Promise.resolve(queues[event].shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    (waiters[event] = waiters[event] || []).push((data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

function size(audio) {
  if (!audio) return 0;
  return audio.byteLength ?? audio.length ?? 0;
}

socket.on("connect_error", (err) => finish(`connect_error: ${err.message}`));
socket.on("auth_error", (data) => finish(`auth_error: ${data?.code} ${data?.message}`));

socket.on("connect", async () => {
  try {
    result.status = await next("status");
    await expectTransports(mode, result, upgrade);

    socket.emit("authenticate", { user, pin });
    const signedIn = await next("authenticated");
    result.authenticated = { user: signedIn.user, todos: signedIn.todos.length, has_token: !!signedIn.token };

    socket.emit("text", { text: "add buy milk" });
    const answer = await next("response");
    result.text_response = { text: answer.text, mime: answer.mime, audio_bytes: size(answer.audio) };
    const todos = await next("todos");
    result.todos = todos.items.map((item) => item.title);

    socket.emit("audio", { audio: readFileSync(wavPath), mime: "audio/wav" });
    result.transcript = (await next("transcript")).text;
    const spoken = await next("response");
    result.audio_response = { text: spoken.text, mime: spoken.mime, audio_bytes: size(spoken.audio) };

    result.transport_at_end = socket.io.engine.transport.name;
    disconnectAndFinish(socket, result, finish);
  } catch (err) {
    finish(err);
  }
});
