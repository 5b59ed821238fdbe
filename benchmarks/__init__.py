"""Benchmarks of nilearn_stca, run from the repository root as ``python -m benchmarks.<name>``."""
