"""TwiML documents, built as strings (pure functions: no request, no I/O).

Values are XML-escaped; `<Parameter>` names and values travel to the Media Stream's `start.customParameters`
(Twilio drops query strings from a `<Stream url>`, so that is the only way to pass them).
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "text/xml; charset=utf-8"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>'

NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE = "Sorry, our assistant is not available right now. Please call again later. Goodbye."
BUSY = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."
# Said when a call cannot go on (the provider failed and could not be recovered, the service restarts, or the
# stream drops): also the verb after <Connect>, which Twilio runs when the stream closes on our side.
APOLOGY = "Sorry, we have to end this call because of a technical problem. Please call again. Goodbye."


def _say(text: str) -> str:
    return f"<Say>{escape(text)}</Say>"


def say_and_hang_up(text: str) -> str:
    return f"{HEAD}<Response>{_say(text)}<Hangup/></Response>"


def connect_stream(
    url: str, parameters: Mapping[str, str | None], *, then_say: str | None = APOLOGY, hold_s: int = 0
) -> str:
    """`<Connect><Stream>` to `url` with `<Parameter>`s (None values left out); when the stream ends from our
    side, Twilio goes on with `then_say` and hangs up (a caller hanging up ends the call before that). With
    `hold_s`, a `<Pause>` comes first: a stream lost with its instance is recovered (#22) in that silence, by a
    REST update that replaces this TwiML before the apology starts."""
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
        for name, value in parameters.items()
        if value is not None
    )
    pause = f'<Pause length="{int(hold_s)}"/>' if hold_s > 0 else ""
    after = pause + (_say(then_say) if then_say else "") + "<Hangup/>"
    return f"{HEAD}<Response><Connect><Stream url={quoteattr(url)}>{params}</Stream></Connect>{after}</Response>"


# ----- the voice to-do assistant's classic flow (<Gather> / <Say>, telephony/classic.py) ---------------------

NO_INPUT = "I didn't hear anything. Goodbye."


def say_and_gather(
    action: str,
    prompt: str,
    *,
    before: str | None = None,
    input_kinds: str = "speech",
    no_input: str = NO_INPUT,
    timeout_s: int = 6,
) -> str:
    """`before` said first, then `prompt` inside a `<Gather>` posting what the caller says (`SpeechResult`) or
    keys in (`Digits`, ended by #) to `action`; without any input Twilio goes on with `no_input` and hangs up."""
    gather = (
        f'<Gather input={quoteattr(input_kinds)} action={quoteattr(action)} method="POST" '
        f'timeout="{int(timeout_s)}" speechTimeout="auto" finishOnKey="#">{_say(prompt)}</Gather>'
    )
    first = _say(before) if before else ""
    return f"{HEAD}<Response>{first}{gather}{_say(no_input)}<Hangup/></Response>"
