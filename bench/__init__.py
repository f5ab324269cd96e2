"""Benchmarks: `python -m bench [--quick] [--only NAME] [--out PATH]`.

Each `bench_*.py` module exposes `run(quick: bool) -> list[dict]`, built with the
helpers of `bench.harness`. They are not part of the test suite.
"""
