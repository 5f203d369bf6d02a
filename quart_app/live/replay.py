"""The client audio a live stream may have to send again, addressed by byte offset in the stream.

Deepgram's final results say which audio is settled; everything after the last final's end is kept (up to a
cap, the oldest dropped first) so that, when the upstream connection drops, a new connection can be fed the
audio it never confirmed and no words are lost. Raw encodings only: their offsets map exactly to time.
"""

from __future__ import annotations

from collections import deque


class ReplayBuffer:
    def __init__(self, max_bytes: int, block: int = 1) -> None:
        self.max_bytes = max(max_bytes, block)
        self.block = max(1, block)
        self.total = 0  # bytes received in the stream so far: the offset of the next byte
        self._chunks: deque[tuple[int, bytes]] = deque()  # (offset of the chunk's first byte, data)
        self._retained = 0

    @property
    def start(self) -> int:
        """Offset of the oldest byte still held (`total` when nothing is)."""
        return self._chunks[0][0] if self._chunks else self.total

    @property
    def retained(self) -> int:
        return self._retained

    def append(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append((self.total, data))
        self.total += len(data)
        self._retained += len(data)
        while self._retained > self.max_bytes and len(self._chunks) > 1:
            _, dropped = self._chunks.popleft()
            self._retained -= len(dropped)

    def confirm(self, offset: int) -> None:
        """Forget every chunk that ends at or before `offset` (settled audio)."""
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= offset:
            _, dropped = self._chunks.popleft()
            self._retained -= len(dropped)

    def resume_offset(self, confirmed: int) -> int:
        """Where a new connection starts: the confirmed offset, or the oldest byte still held, on a sample frame."""
        offset = max(confirmed, self.start)
        return min(offset + (-offset) % self.block, self.total)

    def read(self, offset: int) -> list[bytes]:
        """The held bytes from `offset` to `total`, in chunks (the first one cut to start at `offset`)."""
        pieces: list[bytes] = []
        for start, data in self._chunks:
            end = start + len(data)
            if end <= offset:
                continue
            pieces.append(data[offset - start :] if start < offset else data)
        return pieces
