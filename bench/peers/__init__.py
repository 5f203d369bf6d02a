"""Peer servers the benchmarks compare ours with, each run under the same hypercorn config."""
