// Peer for bench/capacity.py: Node.js socket.io 4 with the benchmark's protocol.
//   PORT=8000 node server.js        (NODE_PATH points at the node_modules the benchmark installed)
// GET /health/live -> {"status":"ok"}; "echo" acks its argument; "broadcast" emits "broadcast" with the
// same argument to every client of "/". socket.io defaults otherwise (no per-message deflate).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const body = JSON.stringify({ status: "ok" });
const server = http.createServer((req, res) => {
  if (req.url === "/health/live") {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(server, { serveClient: false });
io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("broadcast", (data) => {
    io.emit("broadcast", data);
  });
});
server.listen(Number(process.env.PORT || 8000), process.env.HOST || "127.0.0.1", 2048);
