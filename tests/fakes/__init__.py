"""Standalone fake servers run as real subprocesses by the tests and benchmarks."""
