"""Tenants and their knowledge base over the admin REST API (in /openapi.json), and a call's detail with its
transcript; on both backends."""

from __future__ import annotations

import io

from werkzeug.datastructures import FileStorage

from quart_app.db import call_segments, call_transcripts, calls
from quart_app.db.call_transcripts import TranscriptItem
from tests.support.users import make_user


def _file(name: str, data: bytes, content_type: str) -> dict[str, FileStorage]:
    return {"file": FileStorage(io.BytesIO(data), filename=name, content_type=content_type)}


TENANT = {
    "name": "Acme Plumbing",
    "phone_numbers": ["+15550001000", "+15550001001"],
    "instructions": "You answer the phone for Acme Plumbing.",
    "greeting": "Thanks for calling Acme!",
    "voice": "cedar",
    "model": "gpt-realtime",
    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
    "knowledge_enabled": True,
    "max_call_s": 900,
}


async def test_tenant_lifecycle(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        _, admin = await make_user(app, role="admin")
        _, user = await make_user(app)
        headers = {"x-api-key": admin}
        assert (await client.post("/api/tenants", json=TENANT, headers={"x-api-key": user})).status_code == 403

        created = await client.post("/api/tenants", json=TENANT, headers=headers)
        assert created.status_code == 201, await created.get_data(as_text=True)
        body = await created.get_json()
        tenant_id = body["id"]
        assert {k: body[k] for k in TENANT} == TENANT
        assert body["audio_format"] is None

        clash = await client.post("/api/tenants", json={**TENANT, "phone_numbers": ["+15550001001"]}, headers=headers)
        assert clash.status_code == 409
        assert (await clash.get_json())["numbers"] == ["+15550001001"]
        for bad in (
            {**TENANT, "phone_numbers": ["555-0100"]},
            {**TENANT, "turn_detection": {"type": "push_to_talk"}},
            {**TENANT, "turn_detection": {"type": "server_vad", "threshold": 2}},
            {**TENANT, "max_call_s": 5},
            {k: v for k, v in TENANT.items() if k != "instructions"},
        ):
            assert (await client.post("/api/tenants", json=bad, headers=headers)).status_code == 400, bad

        patched = await client.patch(
            f"/api/tenants/{tenant_id}",
            json={
                "greeting": None,
                "phone_numbers": ["+15550002000"],
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
            },
            headers=headers,
        )
        assert patched.status_code == 200
        body = await patched.get_json()
        assert body["greeting"] is None and body["phone_numbers"] == ["+15550002000"]
        assert body["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 300}
        assert body["name"] == TENANT["name"] and body["max_call_s"] == 900
        assert (
            await client.patch(f"/api/tenants/{tenant_id}", json={"name": None}, headers=headers)
        ).status_code == 400

        page = await (await client.get("/api/tenants", headers=headers)).get_json()
        assert page["total"] == 1 and page["items"][0]["id"] == tenant_id
        assert (await client.get(f"/api/tenants/{tenant_id}", headers=headers)).status_code == 200
        assert (await client.delete(f"/api/tenants/{tenant_id}", headers=headers)).status_code == 204
        assert (await client.get(f"/api/tenants/{tenant_id}", headers=headers)).status_code == 404
        assert (await client.delete(f"/api/tenants/{tenant_id}", headers=headers)).status_code == 404


async def test_documents_and_search_preview(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        _, admin = await make_user(app, role="admin")
        headers = {"x-api-key": admin}
        tenant_id = (await (await client.post("/api/tenants", json=TENANT, headers=headers)).get_json())["id"]
        base = f"/api/tenants/{tenant_id}/documents"

        json_doc = await client.post(
            base, json={"title": "Opening hours", "text": "We open at 8 am and close at 6 pm."}, headers=headers
        )
        assert json_doc.status_code == 201
        hours = await json_doc.get_json()
        assert hours["passages"] == 1 and hours["content_type"] == "text/plain"
        upload = await client.post(
            base,
            files=_file(
                "prices.md", b"# Prices\n\nA call-out costs 90 dollars.\n\nAfter 6 pm it costs 140.", "text/markdown"
            ),
            form={"title": "Prices"},
            headers=headers,
        )
        assert upload.status_code == 201, await upload.get_data(as_text=True)
        prices = await upload.get_json()
        assert prices["filename"] == "prices.md" and prices["content_type"] == "text/markdown"
        html = await client.post(
            base,
            files=_file("faq.html", b"<h1>FAQ</h1><script>x()</script><p>We fix boilers &amp; pipes.</p>", "text/html"),
            headers=headers,
        )
        assert html.status_code == 201
        faq = await html.get_json()
        text = (await (await client.get(f"{base}/{faq['id']}", headers=headers)).get_json())["text"]
        assert "boilers & pipes" in text and "<" not in text and "x()" not in text
        assert (
            await client.post(base, files=_file("a.png", b"\x89PNG", "image/png"), headers=headers)
        ).status_code == 415
        assert (
            await client.post(base, files=_file("a.txt", b"\xff\xfe\x00", "text/plain"), headers=headers)
        ).status_code == 400
        assert (await client.post(base, json={"title": "x"}, headers=headers)).status_code == 400
        assert (
            await client.post("/api/tenants/tnt_nope/documents", json={"title": "x", "text": "y"}, headers=headers)
        ).status_code == 404

        listed = await (await client.get(base, headers=headers)).get_json()
        assert listed["total"] == 3 and "text" not in listed["items"][0]

        search = await client.get(f"/api/tenants/{tenant_id}/search?q=how much does a call-out cost", headers=headers)
        assert search.status_code == 200
        found = await search.get_json()
        assert found["results"][0]["title"] == "Prices" and "90 dollars" in found["results"][0]["text"]
        assert found["results"][0]["score"] >= found["results"][-1]["score"]
        assert '"title": "Prices"' in found["tool_output"]

        assert (await client.delete(f"{base}/{prices['id']}", headers=headers)).status_code == 204
        after = await (await client.get(f"/api/tenants/{tenant_id}/search?q=call-out cost", headers=headers)).get_json()
        assert all(r["title"] != "Prices" for r in after["results"])
        assert (await client.delete(f"{base}/{prices['id']}", headers=headers)).status_code == 404


async def test_call_detail_has_the_transcript(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        _, admin = await make_user(app, role="admin")
        db = app.extensions["resources"].db()
        sid = "CA" + "9" * 32
        await calls.open_call(db, call_sid=sid, tenant_id="tnt_1", from_number="+15550001111", to_number="+15550002222")
        for seq, (role, text) in enumerate([("assistant", "Hello!"), ("user", "Hi.")]):
            await call_transcripts.add_item(
                db,
                TranscriptItem(
                    call_sid=sid,
                    seq=seq,
                    role=role,
                    text=text,
                    call_ms=seq * 1000,
                    at=1.0,
                    latency_ms=None if seq else 420,
                ),
            )
        # The call moved once (#22): two streams, on two instances.
        await call_segments.segment_started(
            db,
            call_sid=sid,
            instance_id="a",
            stream_sid="MZ1",
            stream_url="wss://x/twilio/media-stream",
            started_at=1.0,
        )
        await call_segments.segment_ended(db, stream_sid="MZ1", end_reason="moved", ended_at=5.0)
        await call_segments.segment_started(
            db,
            call_sid=sid,
            instance_id="b",
            stream_sid="MZ2",
            stream_url="wss://x/twilio/media-stream",
            started_at=6.0,
        )
        response = await client.get(f"/api/calls/{sid}", headers={"x-api-key": admin})
        assert response.status_code == 200
        body = await response.get_json()
        assert body["call_sid"] == sid and body["tenant_id"] == "tnt_1"
        assert [(s["seq"], s["instance"], s["stream_sid"], s["end_reason"]) for s in body["segments"]] == [
            (0, "a", "MZ1", "moved"),
            (1, "b", "MZ2", None),
        ]
        assert [(t["role"], t["text"], t["latency_ms"]) for t in body["transcript"]] == [
            ("assistant", "Hello!", 420),
            ("user", "Hi.", None),
        ]
        assert (await client.get("/api/calls/CAnope", headers={"x-api-key": admin})).status_code == 404
        listed = await (await client.get("/api/calls", headers={"x-api-key": admin})).get_json()
        assert listed["items"][0]["tenant_id"] == "tnt_1"


async def test_tenant_routes_are_in_the_openapi_document(make_app) -> None:
    async with make_app() as (_, client):
        spec = await (await client.get("/openapi.json")).get_json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/tenants"])
    assert {"get", "patch", "delete"} <= set(paths["/api/tenants/{tenant_id}"])
    assert {"get", "post"} <= set(paths["/api/tenants/{tenant_id}/documents"])
    assert "get" in paths["/api/tenants/{tenant_id}/search"] and "get" in paths["/api/calls/{call_sid}"]
