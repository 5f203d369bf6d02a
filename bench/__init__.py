"""Benchmarks run by hand with `python bench/run.py`; see bench/README.md for the module contract."""
