"""Local stand-ins for the external providers, speaking their real wire protocols on loopback ports.

    async with run_fake(FakeOpenAI()) as fake:
        client = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + "/v1")

`TwilioMediaCall` is the other way round: a client that plays a phone call into the service's Media Streams
WebSocket as Twilio does.

See fakes/README.md for how to point each SDK at its fake.
"""

from fakes.audio import TranscriptRegistry, sine_wav
from fakes.auth0 import FakeAuth0
from fakes.base import FakeService, RecordedRequest
from fakes.deepgram import FakeDeepgram
from fakes.deepseek import FakeDeepSeek
from fakes.openai import FakeOpenAI
from fakes.openai_realtime import FakeRealtime, RealtimeSessionRecord
from fakes.server import FakeServerThread, run_fake, start_fake
from fakes.twilio import FakeTwilio, post_webhook, sign
from fakes.twilio_media import TwilioMediaCall, simulate_call

__all__ = [
    "FakeAuth0",
    "FakeDeepgram",
    "FakeDeepSeek",
    "FakeOpenAI",
    "FakeRealtime",
    "FakeServerThread",
    "FakeService",
    "FakeTwilio",
    "RealtimeSessionRecord",
    "RecordedRequest",
    "TranscriptRegistry",
    "TwilioMediaCall",
    "post_webhook",
    "run_fake",
    "sign",
    "simulate_call",
    "sine_wav",
    "start_fake",
]
