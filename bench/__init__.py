"""Benchmark suite of issue 5: synthetic corpora (``python -m bench.generate``); see bench/README.md."""
