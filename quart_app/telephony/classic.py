"""The voice to-do assistant by phone, over Twilio's classic webhooks (`<Gather>` / `<Say>`): no media stream.

    POST /twilio/call            a call arrives: greeting, then <Gather input="dtmf speech"> for the PIN
    POST /twilio/process_audio   what the caller said (SpeechResult), keyed in (Digits) or recorded (RecordingUrl):
                                 first the PIN (through the PIN lockout), then one assistant turn per request,
                                 each answered with <Say> and another <Gather>, until the caller says goodbye

Both are signature-checked (403) and also served under APP_ROUTE_PREFIX; the `action` URLs keep the prefix the
request came in under. The caller is found by `From` (their phone number on their account). Whether a call is
signed in lives on the server, keyed by CallSid (Redis when configured, else this process), never in a URL.
Every failure (a provider, the database, Redis) still answers 200 with TwiML that apologises.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import aiohttp
from quart import Blueprint, Response, request

from ..assistant.errors import AssistantError
from ..assistant.feature import AssistantFeature
from ..assistant.speech import MAX_AUDIO_BYTES
from ..auth.signin import Busy, InvalidCredentials, LockedOut, SignInRateLimited
from ..auth.twilio_signature import public_url
from ..errors import APIError
from ..resources import Resources
from ..settings import secret
from ..web.state import feature, resources
from . import twiml
from .guards import twilio_webhook

log = logging.getLogger(__name__)

blueprint = Blueprint("twilio_classic", __name__)

PROCESS_PATH = "/twilio/process_audio"
TWILIO_API = "https://api.twilio.com"
STATE_TTL_S = 2 * 3600  # longer than any call of this kind
MEMORY_STATES_MAX = 10_000
PIN_TRIES_PER_CALL = 3
RECORDING_TIMEOUT_S = 15.0

GREETING = "Hello! This is your to-do assistant."
ASK_PIN = "Please say or enter your PIN, then press pound."
SIGNED_IN = "Thanks, you're signed in. What would you like to do? You can say things like add buy milk."
WRONG_PIN = "Sorry, that PIN is not right. Please try again."
TOO_MANY_TRIES = "Sorry, that PIN is not right. Goodbye."
LOCKED = "Too many wrong PINs. Please try again later. Goodbye."
PIN_UNAVAILABLE = "Sorry, I can't check PINs right now. Please call again in a minute. Goodbye."
NEXT = "Anything else?"
NOT_HEARD = "Sorry, I didn't catch that."
GOODBYE = "Goodbye!"
APOLOGY = "Sorry, something went wrong on our side. Please call again later. Goodbye."
RECORDING_APOLOGY = "Sorry, I couldn't get your recording."

_GOODBYE = re.compile(
    r"^(?:ok(?:ay)?[, ]+)?(?:good ?bye|bye(?: bye)?|hang up|that'?s (?:all|it)|i'?m done|no,? thanks?|"
    r"nothing(?: else)?|no(?:pe)?|see you)(?:[, ]+(?:thanks?|thank you|bye))*$",
    re.I,
)
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "won": "1",
    "two": "2",
    "to": "2",
    "too": "2",
    "three": "3",
    "four": "4",
    "for": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "ate": "8",
    "nine": "9",
}


def spoken_digits(text: str) -> str:
    """The digits in what was said or keyed: "one two three four", "1 2 3 4", "12-34." → "1234"."""
    digits = []
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        if token.isdigit():
            digits.append(token)
        elif token in _DIGIT_WORDS:
            digits.append(_DIGIT_WORDS[token])
    return "".join(digits)


def is_goodbye(text: str) -> bool:
    return bool(_GOODBYE.match(text.strip().rstrip(".!?")))


# ----- the state of a call, by CallSid ----------------------------------------------------------------------


@dataclass
class CallState:
    caller: str
    user_id: str | None = None
    pin_failures: int = 0


class CallStates:
    """CallSid → CallState with a TTL: in Redis when configured (any instance may get the next webhook), else
    in this process (bounded; the oldest are dropped first)."""

    def __init__(self) -> None:
        self._memory: dict[str, tuple[float, CallState]] = {}

    async def get(self, res: Resources, call_sid: str) -> CallState | None:
        if res.redis is not None:
            raw = await res.redis.get(self._key(call_sid))
            return CallState(**json.loads(raw)) if raw else None
        found = self._memory.get(call_sid)
        if found is None or found[0] < time.monotonic():
            self._memory.pop(call_sid, None)
            return None
        return found[1]

    async def put(self, res: Resources, call_sid: str, state: CallState) -> None:
        if res.redis is not None:
            await res.redis.set(self._key(call_sid), json.dumps(asdict(state)), ex=STATE_TTL_S)
            return
        self._memory.pop(call_sid, None)
        while len(self._memory) >= MEMORY_STATES_MAX:
            self._memory.pop(next(iter(self._memory)))
        self._memory[call_sid] = (time.monotonic() + STATE_TTL_S, state)

    async def drop(self, res: Resources, call_sid: str) -> None:
        if res.redis is not None:
            await res.redis.delete(self._key(call_sid))
        self._memory.pop(call_sid, None)

    @staticmethod
    def _key(call_sid: str) -> str:
        return f"twilio-classic:{call_sid}"


STATES = CallStates()


# ----- routes ------------------------------------------------------------------------------------------------


def _twiml(document: str) -> Response:
    return Response(document, status=200, content_type=twiml.CONTENT_TYPE)


def process_url() -> str:
    """The public URL of /twilio/process_audio, under the prefix this webhook came in under."""
    res = resources()
    prefix = res.settings.app_route_prefix
    path = prefix + PROCESS_PATH if prefix and request.path.startswith(prefix + "/") else PROCESS_PATH
    return public_url(res.settings, request.scheme, request.host, path, request.headers)


def _ask(prompt: str, *, before: str | None = None, pin: bool = False) -> Response:
    kinds = "dtmf speech" if pin else "speech"
    return _twiml(twiml.say_and_gather(process_url(), prompt, before=before, input_kinds=kinds))


def _valid_sid(call_sid: str) -> bool:
    return bool(re.fullmatch(r"CA[0-9a-fA-F]{32}", call_sid))


@blueprint.post("/twilio/call")
@twilio_webhook
async def assistant_call() -> Response:
    """A call arrives: a greeting, then the PIN prompt. The caller is looked up by `From` when the PIN comes, the
    same way whether the number is known or not (a caller learns nothing before the PIN is checked)."""
    form = await request.form
    call_sid, caller = form.get("CallSid", ""), form.get("From", "").strip()
    try:
        feature(AssistantFeature)
        if not _valid_sid(call_sid) or not caller:
            log.warning("classic call refused: CallSid %r, From %r", call_sid[:40], caller[:40])
            return _twiml(twiml.say_and_hang_up(APOLOGY))
        await STATES.put(resources(), call_sid, CallState(caller=caller))
    except Exception as exc:
        log.error("classic call %s failed to start: %s", call_sid, _describe(exc))
        return _twiml(twiml.say_and_hang_up(APOLOGY))
    log.info("classic call %s from %s: asking for the PIN", call_sid, caller)
    return _ask(ASK_PIN, before=GREETING, pin=True)


@blueprint.post(PROCESS_PATH)
@twilio_webhook
async def process_audio() -> Response:
    """One thing the caller said (or keyed, or recorded): the PIN first, then requests for the assistant."""
    form = await request.form
    call_sid, caller = form.get("CallSid", ""), form.get("From", "").strip()
    try:
        res = resources()
        assistant = feature(AssistantFeature)
        if not _valid_sid(call_sid) or not caller:
            return _twiml(twiml.say_and_hang_up(APOLOGY))
        state = await STATES.get(res, call_sid)
        if state is None or state.caller != caller:  # expired, or a webhook for a call we never greeted
            state = CallState(caller=caller)
        heard = form.get("Digits", "").strip() or form.get("SpeechResult", "").strip()
        if not heard and form.get("RecordingUrl"):
            try:
                heard = await _transcribe_recording(res, assistant, form["RecordingUrl"])
            except AssistantError as exc:
                log.warning("classic call %s: recording failed: %s", call_sid, exc.code)
                return _ask(NEXT if state.user_id else ASK_PIN, before=RECORDING_APOLOGY, pin=state.user_id is None)
        if state.user_id is None:
            return await _check_pin(res, call_sid, state, heard)
        return await _turn(res, assistant, call_sid, state, heard)
    except Exception as exc:
        log.error("classic call %s failed: %s", call_sid, _describe(exc))
        return _twiml(twiml.say_and_hang_up(APOLOGY))


async def _check_pin(res: Resources, call_sid: str, state: CallState, heard: str) -> Response:
    pin = spoken_digits(heard)
    if not pin:
        await STATES.put(res, call_sid, state)
        return _ask(ASK_PIN, before=NOT_HEARD, pin=True)
    try:
        user = await res.pin_signin.verify_caller(state.caller, pin)
    except InvalidCredentials:
        state.pin_failures += 1
        if state.pin_failures >= PIN_TRIES_PER_CALL:
            await STATES.drop(res, call_sid)
            return _twiml(twiml.say_and_hang_up(TOO_MANY_TRIES))
        await STATES.put(res, call_sid, state)
        return _ask(ASK_PIN, before=WRONG_PIN, pin=True)
    except LockedOut:
        log.warning("classic call %s from %s: locked out", call_sid, state.caller)
        await STATES.drop(res, call_sid)
        return _twiml(twiml.say_and_hang_up(LOCKED))
    except (SignInRateLimited, Busy) as exc:
        log.warning("classic call %s: PIN check refused (%s)", call_sid, exc.code)
        return _twiml(twiml.say_and_hang_up(PIN_UNAVAILABLE))
    state.user_id = user.id
    await STATES.put(res, call_sid, state)
    log.info("classic call %s signed in as %s", call_sid, user.id)
    return _ask(SIGNED_IN)


async def _turn(res: Resources, assistant: AssistantFeature, call_sid: str, state: CallState, heard: str) -> Response:
    if not heard:
        return _ask(NEXT, before=NOT_HEARD)
    if is_goodbye(heard):
        await STATES.drop(res, call_sid)
        return _twiml(twiml.say_and_hang_up(GOODBYE))
    assert state.user_id is not None
    try:
        reply = await assistant.assistant.respond(state.user_id, heard)
    except AssistantError as exc:  # unavailable model or storage: apologise, and let the caller try again
        log.warning("classic call %s: assistant failed: %s", call_sid, exc.code)
        return _ask(NEXT, before=exc.message)
    return _ask(NEXT, before=reply.text)


async def _transcribe_recording(res: Resources, assistant: AssistantFeature, url: str) -> str:
    """Fetch a recording of this account through TWILIO_API_BASE_URL (only its path is taken from the webhook,
    so no other host is ever contacted) with the account's credentials, and transcribe it."""
    settings = res.settings
    path = urlsplit(url).path
    account = settings.twilio_account_sid or ""
    if not account or not path.startswith(f"/2010-04-01/Accounts/{account}/Recordings/RE"):
        raise AssistantError("invalid_recording", RECORDING_APOLOGY, 400)
    base = settings.twilio_api_base_url or TWILIO_API
    auth = aiohttp.BasicAuth(account, secret(settings.twilio_auth_token))
    try:
        async with res.http.get(
            base + path, auth=auth, timeout=aiohttp.ClientTimeout(total=RECORDING_TIMEOUT_S)
        ) as response:
            if response.status != 200:
                raise AssistantError("recording_unavailable", RECORDING_APOLOGY, 502)
            audio = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                audio += chunk
                if len(audio) > MAX_AUDIO_BYTES:  # stop reading: transcribe() refuses it as too large
                    break
            content_type = response.headers.get("Content-Type", "")
    except (aiohttp.ClientError, TimeoutError):
        raise AssistantError("recording_unavailable", RECORDING_APOLOGY, 502) from None
    return await assistant.speech.transcribe(bytes(audio), content_type)


def _describe(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return f"{exc.status} {exc.code}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
