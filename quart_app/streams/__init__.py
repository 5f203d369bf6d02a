"""Plain WebSocket routes (no Socket.IO): thin adapters on the services, for clients without Socket.IO."""
