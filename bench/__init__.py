"""Benchmarks for issue 6 (many feeds, one small machine). Run with ``make bench`` or
``python -m bench [--only polling|parsing|burst|history] [--quick]``; see bench/README.md."""
