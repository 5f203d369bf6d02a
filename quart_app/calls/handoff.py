"""The conversation so far, as a new provider session is given it: from a live call's in-memory transcript or
from a stored call record alike (both are `TranscriptItem`s), so a session handoff, a recovery after a
provider drop, and a call resumed on another instance (#22) all replay the same way."""

from __future__ import annotations

from collections.abc import Sequence

from ..db.call_transcripts import TranscriptItem
from .speech import HistoryItem

# The newest turns are kept within this many characters (the model's context is bounded anyway; older turns
# would be truncated by the provider).
MAX_REPLAY_CHARS = 60_000


def dtmf_text(digit: str) -> str:
    return f"The caller pressed {digit} on the keypad."


def replay_history(items: Sequence[TranscriptItem], max_chars: int = MAX_REPLAY_CHARS) -> list[HistoryItem]:
    """Transcript items → history items in call order (`call_ms`, then `seq`), the newest within `max_chars`."""
    history: list[HistoryItem] = []
    for item in sorted(items, key=lambda i: (i.call_ms, i.seq)):
        if item.role == "user" and item.text:
            history.append(HistoryItem("user", item.text))
        elif item.role == "assistant" and item.text:
            history.append(HistoryItem("assistant", item.text))
        elif item.role == "dtmf":
            history.append(HistoryItem("user", dtmf_text(item.text)))
        elif item.role == "tool" and item.text:
            history.append(HistoryItem("system", f"Earlier in this call, a tool returned: {item.text}"))
        elif item.role == "system" and item.text:
            history.append(HistoryItem("system", item.text))
    total = 0
    kept: list[HistoryItem] = []
    for entry in reversed(history):
        total += len(entry.text)
        if total > max_chars:
            break
        kept.append(entry)
    kept.reverse()
    return kept
