"""Benchmarks of issue 7: `python -m bench` (or `bash bench/run.sh`); see bench/__main__.py."""
