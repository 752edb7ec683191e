"""The benchmark suite: ``python -m benchmarks.run`` (``make bench``); kept out of ``make test``."""
