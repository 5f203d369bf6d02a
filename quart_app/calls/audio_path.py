"""How caller and agent audio cross between Twilio (8 kHz μ-law, base64) and the provider.

`UlawPassthrough` is the default and the hot path: the provider speaks μ-law (`audio/pcmu`), so payloads cross
as the same base64 text, never decoded. `LinearPcm` is for providers (or tenants) that need PCM16 at 24 kHz:
μ-law ⇄ PCM16 and 8 ⇄ 24 kHz with the vectorised streaming converters of `quart_app.audio.codecs`.

Lengths are counted in 8 kHz samples (= μ-law bytes; 8 per millisecond) on the Twilio side.
"""

from __future__ import annotations

import base64
from typing import Protocol

from ..audio.codecs import Pcm24kToUlaw8k, Ulaw8kToPcm24k
from .speech import AudioFormat

SAMPLES_PER_MS = 8  # Twilio: 8 kHz, one μ-law byte per sample


def b64_length(data: str) -> int:
    """Decoded length of base64 text, without decoding it."""
    return len(data) * 3 // 4 - (data.endswith("=") + data.endswith("=="))


class AudioPath(Protocol):
    provider_format: AudioFormat

    def inbound(self, payload: str) -> str:
        """A Twilio media payload (μ-law base64) → provider audio (base64)."""
        ...

    def outbound(self, audio: str) -> tuple[str, int, float]:
        """Provider audio (base64) → (Twilio payload, its 8 kHz samples, ms of provider audio it came from)."""
        ...

    def flush(self) -> str:
        """What the converter still holds at the end of a response (μ-law base64, maybe empty)."""
        ...

    def reset(self) -> None: ...


class UlawPassthrough:
    provider_format: AudioFormat = "pcmu"

    def inbound(self, payload: str) -> str:
        return payload

    def outbound(self, audio: str) -> tuple[str, int, float]:
        samples = b64_length(audio)
        return audio, samples, samples / SAMPLES_PER_MS

    def flush(self) -> str:
        return ""

    def reset(self) -> None:
        return None


class LinearPcm:
    """PCM16 24 kHz on the provider side; streaming converters keep their filter state across frames."""

    provider_format: AudioFormat = "pcm16"
    PCM_BYTES_PER_MS = 48  # 24 kHz, 2 bytes a sample

    def __init__(self) -> None:
        self._up = Ulaw8kToPcm24k()
        self._down = Pcm24kToUlaw8k()
        self._odd = b""  # a delta may end in the middle of a sample

    def inbound(self, payload: str) -> str:
        return base64.b64encode(self._up.process(base64.b64decode(payload))).decode("ascii")

    def outbound(self, audio: str) -> tuple[str, int, float]:
        pcm = self._odd + base64.b64decode(audio)
        whole = len(pcm) - len(pcm) % 2
        self._odd = pcm[whole:]
        ulaw = self._down.process(pcm[:whole])
        return base64.b64encode(ulaw).decode("ascii"), len(ulaw), whole / self.PCM_BYTES_PER_MS

    def flush(self) -> str:
        self._odd = b""
        tail = self._down.flush()
        return base64.b64encode(tail).decode("ascii") if tail else ""

    def reset(self) -> None:
        self._odd = b""
        self._down.reset()


def audio_path(fmt: AudioFormat) -> AudioPath:
    return LinearPcm() if fmt == "pcm16" else UlawPassthrough()
