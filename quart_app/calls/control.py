"""Changing a live call through Twilio's REST API: hang up, or replace its TwiML (say something, then hang up; or
connect it to a new stream: a move, #22), and read its status.

`POST {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with `Status=completed`
(or `Twiml=...`). A call that has already ended (404, code 20404) counts as success: it is what we wanted.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.twilio.com"
ALREADY_ENDED = 20404
NOT_IN_PROGRESS = 21220  # "Call is not in-progress. Cannot redirect."


class CallControl(Protocol):
    async def hang_up(self, call_sid: str) -> bool: ...

    async def replace_twiml(self, call_sid: str, twiml: str) -> bool: ...

    async def call_status(self, call_sid: str) -> str | None: ...


class TwilioCallControl:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        account_sid: str,
        auth_token: str,
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.http = http
        self.account_sid = account_sid
        self._auth = aiohttp.BasicAuth(account_sid, auth_token)
        self.base_url = (base_url or DEFAULT_API_BASE_URL).rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _url(self, call_sid: str) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}.json"

    async def _update(self, call_sid: str, form: dict[str, str], what: str) -> bool:
        try:
            async with self.http.post(self._url(call_sid), data=form, auth=self._auth, timeout=self.timeout) as r:
                if r.status < 300:
                    return True
                body = await r.json(content_type=None) if r.content_length != 0 else {}
                code = body.get("code") if isinstance(body, dict) else None
                if code in (ALREADY_ENDED, NOT_IN_PROGRESS) or r.status == 404:
                    log.info("call %s had already ended (%s) when asked to %s", call_sid, code or r.status, what)
                    return True
                log.warning("call %s: Twilio refused to %s: %s %s", call_sid, what, r.status, body)
                return False
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("call %s: could not %s through Twilio: %r", call_sid, what, exc)
            return False

    async def hang_up(self, call_sid: str) -> bool:
        return await self._update(call_sid, {"Status": "completed"}, "hang up")

    async def replace_twiml(self, call_sid: str, twiml: str) -> bool:
        return await self._update(call_sid, {"Twiml": twiml}, "replace the TwiML")

    async def call_status(self, call_sid: str) -> str | None:
        """The call's status as Twilio reports it (`in-progress`, `completed`, ...); None if it cannot be read
        (a call Twilio does not know is reported `completed`)."""
        try:
            async with self.http.get(self._url(call_sid), auth=self._auth, timeout=self.timeout) as r:
                if r.status == 404:
                    return "completed"
                if r.status >= 300:
                    log.warning("call %s: Twilio answered %s to a status read", call_sid, r.status)
                    return None
                body = await r.json(content_type=None)
                status = body.get("status") if isinstance(body, dict) else None
                return str(status) if status else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("call %s: could not read its status from Twilio: %r", call_sid, exc)
            return None


class NoCallControl:
    """Without Twilio REST credentials: nothing can be changed; the caller closes the stream instead."""

    async def hang_up(self, call_sid: str) -> bool:
        return False

    async def replace_twiml(self, call_sid: str, twiml: str) -> bool:
        return False

    async def call_status(self, call_sid: str) -> str | None:
        return None
