"""Live transcription: one transport-free stream session per client connection, relayed to Deepgram live.

`LiveStreams` (feature.py) is the process's feature: it opens sessions, admits streams (rate, concurrency,
drain) and finalises every open stream on drain. `LiveTranscription` (session.py) is one client's session,
driven by a thin adapter (Socket.IO namespace or plain WebSocket route) through `start`/`audio`/`stop` and
answering through a sender callback. No Quart here: the adapters live in `sockets/` and `streams/`.
"""
