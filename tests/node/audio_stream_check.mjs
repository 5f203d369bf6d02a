// Streams raw audio to the "/audio-stream" namespace with the official socket.io-client (v4, pinned in
// package.json), the way a browser or React Native app does, and prints one JSON line with what came back.
//
//   node audio_stream_check.mjs <server-url> <token> <raw-audio-file> <default|websocket> [start-options-json]
//
//   default   : the client's own default transports (long-polling, then the upgrade to websocket)
//   websocket : websocket only
//
// connect (auth: {token}, query: {lang: "en"}) -> "connected" -> emit start -> "started" -> emit audio (640-byte
// Buffers) -> emit stop -> "stopped" -> disconnect. Exit code 0 only if that whole exchange happened; a refused
// handshake prints {ok: false, error: <connect_error message>}.

import { readFileSync } from "node:fs";
import { MODES, connect, startCheck } from "./lib.mjs";

const [url, token, audioPath, mode = "default", startJson = "{}"] = process.argv.slice(2);
const CHUNK = 640;

const { result, finish } = startCheck({
  fields: { mode, connected: null, started: null, transcripts: [], utterance_ends: 0, stopped: null, errors: [] },
  valid: url && token && audioPath && MODES.includes(mode),
  usage: "usage: node audio_stream_check.mjs <server-url> <token> <raw-audio-file> <default|websocket> [start-json]",
  timeoutMs: 20000,
});

const socket = connect(`${url}/audio-stream`, mode, { auth: { token }, query: { lang: "en" } });

function once(event) {
  return new Promise((resolve) => socket.once(event, resolve));
}

socket.on("connect_error", (err) => finish(err.message));
socket.on("transcript", (t) => result.transcripts.push(t));
socket.on("utterance_end", () => (result.utterance_ends += 1));
socket.on("error", (e) => result.errors.push(e));

socket.on("connect", async () => {
  try {
    result.connected = await once("connected");
    const started = once("started");
    socket.emit("start", { encoding: "linear16", sample_rate: 16000, ...JSON.parse(startJson) });
    result.started = await started;
    const audio = readFileSync(audioPath);
    for (let at = 0; at < audio.length; at += CHUNK) {
      socket.emit("audio", audio.subarray(at, at + CHUNK));
    }
    const stopped = once("stopped");
    socket.emit("stop");
    result.stopped = await stopped;
    result.transport = socket.io.engine.transport.name;
    socket.once("disconnect", () => finish(null));
    socket.disconnect();
  } catch (err) {
    finish(err);
  }
});
