"""FakeTwilio: the 2010-04-01 Calls and Recordings REST resources, plus webhook signing like Twilio does it.

Point twilio-python at it with `client = Client(sid, token); client.api.base_url = fake.base_url`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import hmac
import inspect
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from fakes import audio
from fakes.base import FakeService

log = logging.getLogger(__name__)

API = "/2010-04-01"
TERMINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def _pairs(params: Mapping[str, Any] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(str(key), str(v)) for v in values]
    return pairs


def sign(
    url: str, params: Mapping[str, Any] | Iterable[tuple[str, str]] | None, auth_token: str, algorithm: str = "sha1"
) -> str:
    """The X-Twilio-Signature Twilio sends: base64(HMAC(token, url + each name+value, names sorted)).

    Repeated names contribute each distinct value in sorted order, as twilio-python's validator expects.
    For JSON webhooks pass `params=None` and a URL that carries `?bodySHA256=...`.
    """
    grouped: dict[str, set[str]] = {}
    for key, value in _pairs(params):
        grouped.setdefault(key, set()).add(value)
    payload = url + "".join(key + value for key in sorted(grouped) for value in sorted(grouped[key]))
    digest = hmac.new(auth_token.encode(), payload.encode(), _HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode()


async def post_webhook(url: str, params: Mapping[str, Any], auth_token: str) -> tuple[int, str]:
    """POST a form webhook to the service as Twilio would (signed); returns (status, body)."""
    headers = {
        "X-Twilio-Signature": sign(url, params, auth_token),
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=_pairs(params), headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as response,
    ):
        return response.status, await response.text()


def _rfc2822(moment: dt.datetime | None) -> str | None:
    return email.utils.format_datetime(moment).replace("-0000", "+0000") if moment else None


def _formatted(number: str) -> str:
    digits = number.removeprefix("+1")
    if number.startswith("+1") and len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return number


class FakeTwilio(FakeService):
    """State of a fake Twilio account: `calls` maps CallSid to its JSON, `instructions` to posted TwiML/Url."""

    name = "twilio"

    def __init__(self, account_sid: str = "AC" + "0" * 31 + "1", auth_token: str = "fake-twilio-auth-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: dict[str, dict[str, Any]] = {}
        self.instructions: dict[str, list[dict[str, str]]] = {}
        self.recordings: dict[str, dict[str, Any]] = {}
        self._recording_media: dict[str, dict[str, bytes]] = {}
        self._call_update_hooks: list[Callable[[str, dict[str, str]], Any]] = []
        self._state_lock = threading.Lock()

    def sign(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        return sign(url, params, self.auth_token)

    async def post_webhook(self, url: str, params: Mapping[str, Any]) -> tuple[int, str]:
        return await post_webhook(url, params, self.auth_token)

    def set_call_status(self, call_sid: str, status: str) -> dict[str, Any]:
        """Move a call along (e.g. to "in-progress") as the carrier would."""
        with self._state_lock:
            return self._set_status(self.calls[call_sid], status)

    def on_call_update(self, callback: Callable[[str, dict[str, str]], Any]) -> Callable[[], None]:
        """Call `callback(call_sid, update)` after each accepted `POST .../Calls/{CallSid}.json`.

        `update` holds the posted `Twiml`, `Url`, `Method` and `Status` that were present. The callback runs on
        the fake's loop (a coroutine function is awaited); its errors are logged, never sent to the client.
        Returns a function that unregisters it.
        """
        with self._state_lock:
            self._call_update_hooks.append(callback)

        def unsubscribe() -> None:
            with self._state_lock:
                if callback in self._call_update_hooks:
                    self._call_update_hooks.remove(callback)

        return unsubscribe

    def add_recording(
        self, audio_bytes: bytes, *, call_sid: str | None = None, source: str = "StartCallRecording", channels: int = 1
    ) -> tuple[str, str]:
        """Store a recording (WAV or MP3 bytes) and return (RecordingSid, media URL without extension).

        The URL serves WAV (no extension or `.wav`), MP3 (`.mp3`, converted with ffmpeg when needed) and the
        metadata (`.json`), all behind HTTP Basic auth, like an account with media authentication on.
        """
        fmt, duration = audio.probe(audio_bytes)
        if fmt not in ("wav", "mp3"):
            raise ValueError(f"recordings are WAV or MP3, not {fmt}")
        sid = "RE" + uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        path = f"{API}/Accounts/{self.account_sid}/Recordings/{sid}"
        metadata = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "call_sid": call_sid,
            "conference_sid": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "start_time": _rfc2822(now - dt.timedelta(seconds=duration)),
            "duration": str(int(round(duration))),
            "sid": sid,
            "price": None,
            "price_unit": "USD",
            "status": "completed",
            "channels": channels,
            "source": source,
            "error_code": None,
            "track": "both",
            "encryption_details": None,
            "uri": f"{path}.json",
            "media_url": None,
            "subresource_uris": {
                "add_on_results": f"{path}/AddOnResults.json",
                "transcriptions": f"{path}/Transcriptions.json",
            },
        }
        with self._state_lock:
            self.recordings[sid] = metadata
            self._recording_media[sid] = {fmt: audio_bytes}
        return sid, f"{self.base_url}{path}"

    # ----- HTTP plumbing ----------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        calls = API + "/Accounts/{account}/Calls.json"
        call = API + "/Accounts/{account}/Calls/{call_sid}.json"
        recording = API + "/Accounts/{account}/Recordings/{recording}"
        return [
            web.get(recording, self.fetch_recording),
            web.get(API + "/Accounts/{account}.json", self.fetch_account),
            web.post(calls, self.create_call),
            web.get(calls, self.list_calls),
            web.get(call, self.fetch_call),
            web.post(call, self.update_call),
            web.delete(call, self.delete_call),
        ]

    def error_response(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        code = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}.get(status, status * 100)
        return self.error(status, code, message or "Injected failure", headers)

    def error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(
            body, status=status, headers={"Twilio-Request-Id": "RQ" + uuid.uuid4().hex, **(headers or {})}
        )

    def _authenticate(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or user != self.account_sid or password != self.auth_token:
            return self.error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if request.match_info["account"] != self.account_sid:
            return self._not_found(request)
        return None

    def _not_found(self, request: web.Request) -> web.Response:
        resource = request.path.removesuffix(".json")
        return self.error(404, 20404, f"The requested resource {resource}.json was not found")

    async def _form(self, request: web.Request) -> dict[str, str]:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        record = self.record(request)
        record.fields = {k: [v] for k, v in form.items()}
        return form

    # ----- resources --------------------------------------------------------------------------

    def _call_uri(self, call_sid: str) -> str:
        return f"{API}/Accounts/{self.account_sid}/Calls/{call_sid}.json"

    def _new_call(self, form: dict[str, str]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        call_sid = "CA" + uuid.uuid4().hex
        base = f"{API}/Accounts/{self.account_sid}/Calls/{call_sid}"
        subresources = [
            "feedback",
            "notifications",
            "recordings",
            "streams",
            "payments",
            "events",
            "siprec",
            "transcriptions",
            "user_defined_message_subscriptions",
            "user_defined_messages",
        ]
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": "2010-04-01",
            "caller_name": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": form["From"],
            "from_formatted": _formatted(form["From"]),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": "PN" + uuid.uuid4().hex,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call_sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {name: f"{base}/{name.replace('_', '')}.json" for name in subresources},
            "to": form["To"],
            "to_formatted": _formatted(form["To"]),
            "trunk_sid": None,
            "uri": self._call_uri(call_sid),
        }

    def _set_status(self, call: dict[str, Any], status: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        if status == "in-progress" and call["start_time"] is None:
            call["start_time"] = _rfc2822(now)
        if status in TERMINAL and call["end_time"] is None:
            call["end_time"] = _rfc2822(now)
            started = email.utils.parsedate_to_datetime(call["start_time"]) if call["start_time"] else now
            call["duration"] = str(int((now - started).total_seconds()))
        call["status"] = status
        call["date_updated"] = _rfc2822(now)
        return dict(call)

    async def fetch_account(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        return web.json_response(
            {
                "sid": self.account_sid,
                "friendly_name": "Fake Twilio account",
                "status": "active",
                "type": "Full",
                "owner_account_sid": self.account_sid,
                "auth_token": self.auth_token,
                "uri": f"{API}/Accounts/{self.account_sid}.json",
            }
        )

    async def create_call(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        form = await self._form(request)
        if not form.get("To"):
            return self.error(400, 21201, "No 'To' number is specified")
        if not form.get("From"):
            return self.error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return self.error(400, 21205, "Url parameter is required.")
        call = self._new_call(form)
        with self._state_lock:
            self.calls[call["sid"]] = call
            self.instructions[call["sid"]] = [{k: form[k] for k in ("Url", "Twiml", "Method") if k in form}]
        return web.json_response(call, status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        query = request.query
        page_size = int(query.get("PageSize", "50"))
        with self._state_lock:
            calls = [dict(c) for c in reversed(self.calls.values())]
        for field, key in (("Status", "status"), ("To", "to"), ("From", "from")):
            if field in query:
                calls = [c for c in calls if c[key] == query[field]]
        page = calls[:page_size]
        uri = f"{API}/Accounts/{self.account_sid}/Calls.json?PageSize={page_size}&Page=0"
        return web.json_response(
            {
                "calls": page,
                "end": max(len(page) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def fetch_call(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        with self._state_lock:
            call = self.calls.get(request.match_info["call_sid"])
            body = dict(call) if call else None
        return web.json_response(body) if body else self._not_found(request)

    async def update_call(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        form = await self._form(request)
        with self._state_lock:
            call = self.calls.get(request.match_info["call_sid"])
            if call is None:
                return self._not_found(request)
            status = form.get("Status")
            if status is not None and status not in ("canceled", "completed"):
                return self.error(400, 21218, f"Invalid value '{status}' for parameter 'Status'")
            redirect = {k: form[k] for k in ("Url", "Twiml", "Method") if k in form}
            if redirect and call["status"] in TERMINAL:
                return self.error(400, 21220, "Call is not in-progress. Cannot redirect.")
            if redirect:
                self.instructions[call["sid"]].append(redirect)
            if status == "canceled" and call["status"] in ("queued", "ringing"):
                self._set_status(call, "canceled")
            elif status == "completed" and call["status"] not in TERMINAL:
                self._set_status(call, "completed")
            body = dict(call)
            hooks = list(self._call_update_hooks)
        update = {**redirect, **({"Status": status} if status is not None else {})}
        for hook in hooks:
            try:
                result = hook(body["sid"], dict(update))
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a test hook must not turn into a Twilio error
                log.exception("FakeTwilio call-update hook failed")
        return web.json_response(body)

    async def delete_call(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        with self._state_lock:
            removed = self.calls.pop(request.match_info["call_sid"], None)
        return web.Response(status=204) if removed else self._not_found(request)

    async def fetch_recording(self, request: web.Request) -> web.StreamResponse:
        """`.../Recordings/{Sid}[.wav|.mp3|.json]`: media (WAV by default) or metadata."""
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        name = request.match_info["recording"]
        sid, dot, extension = name.partition(".")
        extension = extension.lower() if dot else "wav"
        with self._state_lock:
            metadata = dict(self.recordings.get(sid) or {})
            media = dict(self._recording_media.get(sid) or {})
        if not metadata or extension not in ("wav", "mp3", "json"):
            return self._not_found(request)
        if extension == "json":
            origin = f"{request.scheme}://{request.host}"
            return web.json_response(
                {**metadata, "media_url": f"{origin}{API}/Accounts/{self.account_sid}/Recordings/{sid}"}
            )
        data = media.get(extension)
        if data is None:
            data = await self._convert(next(iter(media.values())), extension)
            if data is None:
                return self.error(500, 20500, f"cannot produce {extension} audio here (ffmpeg is not installed)")
            with self._state_lock:
                self._recording_media.setdefault(sid, {})[extension] = data
        content_type = "audio/x-wav" if extension == "wav" else "audio/mpeg"
        return web.Response(body=data, content_type=content_type)

    @staticmethod
    async def _convert(data: bytes, extension: str) -> bytes | None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            return None
        codec = ["-c:a", "libmp3lame", "-f", "mp3"] if extension == "mp3" else ["-c:a", "pcm_s16le", "-f", "wav"]
        process = await asyncio.create_subprocess_exec(
            ffmpeg,
            "-loglevel",
            "error",
            "-i",
            "pipe:0",
            *codec,
            "pipe:1",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        output, _ = await process.communicate(data)
        return output if process.returncode == 0 and output else None
