"""Audio helpers: pure functions, no I/O beyond the file handles they are given."""
