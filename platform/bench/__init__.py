"""Benchmarks: each module measures side by side in one run and prints ratios.

These machines are shared and noisy, so no figure here is an absolute timing
judged against a constant; every module compares two configurations measured
in the same run. `python -m rolescope.bench [NAME…] [--quick]` runs them.
"""
