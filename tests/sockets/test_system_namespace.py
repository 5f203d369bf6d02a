"""The root namespace "/" with python-socketio's AsyncClient against a real hypercorn server.

Covers both transports (polling upgraded to websocket, websocket only), the `ping_server` ack, the
per-namespace connection counts in /health, Origin checks, and that malformed or oversized traffic only
costs the offending connection.

No test here disconnects a polling-only client from the client side: python-engineio's server leaves
that client's pending long-poll GET open until ping_interval + ping_timeout (45 s), the python client
waits for it (30 s), and hypercorn's shutdown waits for it too. Polling-only clients are covered where
the server ends them (oversized payloads here, the SIGTERM drain in tests/test_shutdown.py).
"""

from __future__ import annotations

import json

import httpx
import pytest
import socketio
import websockets

from tests.sockets.clients import RawSocketIO, close_all, connect, health, idle, root_connections, wait_until
from tests.support.live_server import LiveServer

# How a refused handshake surfaces in python-socketio's client: ConnectionError, except that with the
# polling transport engineio's client reads the 400 body after closing its aiohttp session, which
# aiohttp reports as RuntimeError("Connection closed."). Either way the client is not connected; the
# HTTP-level test below pins the server's actual answer (400, no Access-Control-Allow-Origin).
REFUSED = (socketio.exceptions.ConnectionError, RuntimeError)

TRANSPORTS = {
    "polling-then-websocket": ["polling", "websocket"],
    "websocket-only": ["websocket"],
}


@pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
async def test_ping_server_ack_and_connection_count(shared_server: LiveServer, transports: list[str]) -> None:
    server = shared_server
    await idle(server)
    before = await health(server)
    assert before["connections"]["/"] == 0

    client, _ = await connect(server.url, transports)
    try:
        # python-engineio's client upgrades inside connect(), so both modes end on websocket; the OPEN
        # packet tells them apart: a polling handshake offers the websocket upgrade, a websocket one none.
        assert client.transport() == "websocket"
        assert client.eio.upgrades == (["websocket"] if transports[0] == "polling" else [])

        reply = await client.call("ping_server", {"sent": 1}, timeout=10)
        assert reply["instance"] == before["instance"], "ack must come from the instance /health describes"
        assert reply["version"] == before["version"]
        assert isinstance(reply["server_time"], float)

        # The upgraded connection is one client, not two (the polling session became the websocket one).
        assert await root_connections(server) == 1
    finally:
        await client.disconnect()

    assert await wait_until(lambda: root_connections(server), lambda n: n == 0) == 0


async def test_counts_several_clients_and_each_disconnect(shared_server: LiveServer) -> None:
    server = shared_server
    await idle(server)
    transports = (["websocket"], ["polling", "websocket"], ["websocket"])
    clients = [(await connect(server.url, t))[0] for t in transports]
    try:
        assert await root_connections(server) == 3
        await clients[0].disconnect()
        assert await wait_until(lambda: root_connections(server), lambda n: n == 2) == 2
        assert (await clients[1].call("ping_server", timeout=10))["instance"]
    finally:
        await close_all(clients)
    await wait_until(lambda: root_connections(server), lambda n: n == 0)


@pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
async def test_cors_origins_list_refuses_other_origins(restricted_server: LiveServer, transports: list[str]) -> None:
    server = restricted_server
    await idle(server)

    await idle(server)
    with pytest.raises(REFUSED):
        await connect(server.url, transports, headers={"Origin": "https://evil.example"})
    assert await root_connections(server) == 0

    client, _ = await connect(server.url, transports, headers={"Origin": "https://app.example"})
    try:
        assert (await client.call("ping_server", timeout=10))["instance"]
        assert await root_connections(server) == 1
    finally:
        await client.disconnect()


async def test_handshake_cors_headers_name_only_the_allowed_origin(restricted_server: LiveServer) -> None:
    server = restricted_server
    await idle(server)
    async with httpx.AsyncClient(timeout=5) as http:
        good = await http.get(
            server.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://app.example"}
        )
        bad = await http.get(
            server.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"}
        )
    assert good.status_code == 200
    assert good.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert bad.status_code == 400
    assert "Access-Control-Allow-Origin" not in bad.headers


@pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
async def test_without_cors_origins_only_same_origin_is_accepted(shared_server: LiveServer, transports) -> None:
    server = shared_server
    await idle(server)
    # python-socketio's default (cors_allowed_origins=None) is "same origin only": a browser page on
    # another site must not be able to open a socket with the user's cookies.
    with pytest.raises(REFUSED):
        await connect(server.url, transports, headers={"Origin": "https://app.example"})
    assert await root_connections(server) == 0

    client, _ = await connect(server.url, transports, headers={"Origin": server.url})
    try:
        assert (await client.call("ping_server", timeout=10))["instance"]
    finally:
        await client.disconnect()


MALFORMED = [
    "",  # empty frame
    "x",  # unknown Engine.IO packet type
    "9{}",  # packet type out of range
    "4",  # MESSAGE without a Socket.IO packet
    "42[",  # EVENT with truncated JSON
    '42{"not": "a list"}',  # EVENT whose payload is not an array
    "42[]",  # EVENT without a name
    "43not-a-number[]",  # ACK with a garbage id
    "45-[]",  # BINARY_EVENT announcing no attachments count
    "40/no-such-namespace,",  # CONNECT to a namespace that does not exist
    "\x00\xff\xfe",  # control bytes as text
]


async def test_malformed_packets_do_not_hurt_the_server_or_other_clients(restricted_server: LiveServer) -> None:
    # Short Engine.IO heartbeats so that sessions whose connection died without a clean close are reaped
    # within seconds: some garbage frames make python-engineio's websocket handler raise (hypercorn
    # then closes with 1011), skipping its disconnect path, and only the ping timeout ends that session.
    server = restricted_server
    await idle(server)
    bystander, recorder = await connect(server.url, ["websocket"])
    instance = (await health(server))["instance"]
    outcomes: dict[str, str] = {}
    try:
        for ack_id, garbage in enumerate([*MALFORMED, b"\x00\x01binary-without-context"], start=1):
            raw = await RawSocketIO.open(server.ws_url)
            try:
                await raw.ws.send(garbage)
                # The server may drop the offending connection, or ignore the packet (possibly answering
                # with a Socket.IO error); if it kept the connection, the connection must still work.
                try:
                    reply = await raw.ping_server(ack_id, within=5)
                except websockets.ConnectionClosed:
                    outcomes[repr(garbage)] = "closed"
                else:
                    assert reply["instance"] == instance
                    outcomes[repr(garbage)] = "ignored"
            finally:
                await raw.close()

        body = await health(server)
        assert body["status"] == "healthy", body
        assert bystander.connected
        assert (await bystander.call("ping_server", timeout=10))["instance"] == instance
        assert "disconnect" not in recorder.names(), f"the bystander was disconnected; outcomes: {outcomes}"
        # Every raw session ends (cleanly or through the ping timeout); the bystander is all that is left.
        await wait_until(lambda: root_connections(server), lambda n: n == 1)
        assert bystander.connected and "disconnect" not in recorder.names()
        assert "ignored" in outcomes.values(), outcomes  # the "keeps working" branch was exercised
    finally:
        await bystander.disconnect()


async def test_malformed_handshake_requests_get_errors_not_crashes(shared_server: LiveServer) -> None:
    server = shared_server
    await idle(server)
    async with httpx.AsyncClient(timeout=5) as http:
        bad_version = await http.get(server.url + "/socket.io/?EIO=3&transport=polling")
        bad_transport = await http.get(server.url + "/socket.io/?EIO=4&transport=carrier-pigeon")
        unknown_sid = await http.post(server.url + "/socket.io/?EIO=4&transport=polling&sid=nope", content=b"40")
    assert bad_version.status_code == 400
    assert bad_transport.status_code == 400
    assert unknown_sid.status_code == 400
    assert (await health(server))["status"] == "healthy"


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_oversized_message_disconnects_only_the_sender(
    restricted_server: LiveServer, transports: list[str]
) -> None:
    server = restricted_server
    await idle(server)
    bystander, bystander_events = await connect(server.url, ["websocket"])
    sender, sender_events = await connect(server.url, transports)
    try:
        # Small messages pass, and the server tells clients the limit in the handshake.
        assert (await sender.call("ping_server", "x" * 100, timeout=10))["instance"]

        await sender.emit("ping_server", "x" * 10_000)
        await sender_events.wait_for("disconnect")
        assert not sender.connected

        assert bystander.connected
        assert "disconnect" not in bystander_events.names()
        assert (await bystander.call("ping_server", timeout=10))["instance"]
        await wait_until(lambda: root_connections(server), lambda n: n == 1)
    finally:
        await close_all([sender, bystander])


async def test_oversized_raw_websocket_frame_is_refused(restricted_server: LiveServer) -> None:
    server = restricted_server
    await idle(server)
    raw = await RawSocketIO.open(server.ws_url)
    assert raw.open_payload["maxPayload"] == 2048
    assert (await raw.ping_server(1))["instance"]  # a small message is fine
    await raw.ws.send("421" + json.dumps(["ping_server", "y" * 5000]))
    with pytest.raises(websockets.ConnectionClosed):  # the server ends this connection instead of acking
        while True:
            await raw.recv_skipping_pings(within=5)
    assert (await health(server))["status"] == "healthy"
    await wait_until(lambda: root_connections(server), lambda n: n == 0)
