"""What can go wrong in the assistant, as errors a transport can show: a stable `code` and a `message` the user
may read (or hear). They are `APIError`s too, so a REST handler renders them like any other error.

    AssistantError(code, message)        base; `.code`, `.message`, `.status`
    ├─ AssistantUnavailable              the chat model is unconfigured or failed (the message is an apology)
    ├─ AudioTooLarge                     audio over MAX_AUDIO_BYTES, refused before it is sent anywhere
    ├─ AudioTooLong                      audio over MAX_AUDIO_SECONDS (when its duration is known)
    ├─ UnsupportedAudio                  not a recognisable audio container
    └─ SpeechFailed                      speech-to-text or text-to-speech failed (provider down, unconfigured)
"""

from __future__ import annotations

from ..errors import APIError

APOLOGY = "Sorry, I can't reach my assistant brain right now. Please try again in a moment."


class AssistantError(APIError):
    def __init__(self, code: str, message: str, status: int = 503) -> None:
        super().__init__(status, code, message)


class AssistantUnavailable(AssistantError):
    """The chat model could not answer. Tool changes applied before the failure stay applied."""

    def __init__(self, message: str = APOLOGY, *, reason: str = "") -> None:
        super().__init__("assistant_unavailable", message, 503)
        self.reason = reason  # for logs: what failed, without secrets


class AudioTooLarge(AssistantError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            "audio_too_large", f"The recording is too large ({size} bytes); at most {limit} bytes are accepted.", 413
        )
        self.size = size
        self.limit = limit


class AudioTooLong(AssistantError):
    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(
            "audio_too_long", f"The recording is too long ({seconds:.0f} s); at most {limit:.0f} s are accepted.", 413
        )
        self.seconds = seconds
        self.limit = limit


class UnsupportedAudio(AssistantError):
    def __init__(self, message: str = "The recording is not in a supported audio format.") -> None:
        super().__init__("unsupported_audio", message, 415)


class SpeechFailed(AssistantError):
    def __init__(self, message: str = "Sorry, speech is not available right now.", *, reason: str = "") -> None:
        super().__init__("speech_failed", message, 503)
        self.reason = reason
