"""The benchmark: ``python -m bench.run`` (``make bench``); see bench/RESULTS.md for its figures."""
