"""Performance benchmarks: each EM stage timed against its naive counterpart in the same process.

Run everything with ``make bench`` (``python -m benchmarks.run``); it writes ``benchmarks/results.json`` and
``benchmarks/results.md``. These are measurements, not tests: ``tests/benchmarks`` only checks the harness
(ratio fields present, naive and ours agree numerically) at tiny sizes and never asserts a time.
"""
