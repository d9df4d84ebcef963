"""Benchmarks: side-by-side measurements of each stage against its alternatives."""
