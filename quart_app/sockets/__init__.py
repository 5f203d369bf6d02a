"""Socket.IO: the server and one AsyncNamespace per file."""
