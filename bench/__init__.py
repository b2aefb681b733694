"""Benchmarks: run each as `python -m bench.NAME [--quick]` from the repository root."""
