"""The upload path as the seed system had it, ported to Quart: read the whole file into memory, forward bytes.

The seed (Flask) did `request.files['audio'].read()` and handed the bytes to the Deepgram SDK. Quart's
multipart parser spools the part to a temporary file exactly like Werkzeug's does, so the difference
from our service is only what happens next: `.read()` materialises the whole upload, and the SDK then
sends that one `bytes` object. Same hypercorn config, same MAX_CONTENT_LENGTH, same Deepgram fake and
SDK options; no authentication or database (which only makes this peer lighter).

    hypercorn --config hypercorn.toml bench.peers.naive_upload:app     (DEEPGRAM_BASE_URL, DEEPGRAM_API_KEY)
"""

from __future__ import annotations

import os

from quart import Quart, jsonify, request

from quart_app.providers.deepgram import build_client

app = Quart(__name__)
app.config["MAX_CONTENT_LENGTH"] = int(os.environ.get("MAX_UPLOAD_MB", "200")) * 1024 * 1024
_client = build_client(os.environ["DEEPGRAM_API_KEY"], os.environ["DEEPGRAM_BASE_URL"], timeout=120.0)


@app.get("/health/live")
async def live():  # type: ignore[no-untyped-def]
    return {"status": "ok"}


@app.post("/transcriptions/deepgram")
async def transcribe():  # type: ignore[no-untyped-def]
    files = await request.files
    audio = files["audio"].read()  # the whole upload as one bytes object
    response = await _client.listen.v1.media.transcribe_file(
        request=audio,
        model="nova-3",
        smart_format=True,
        punctuate=True,
        utterances=True,
        detect_language=True,
    )
    data = response.model_dump()
    return jsonify({"transcript": data["results"]["channels"][0]["alternatives"][0]["transcript"], "bytes": len(audio)})
