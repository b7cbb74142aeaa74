"""Benchmarks. Figures are printed and written to bench/reports/; they never run as timed tests."""
