"""Benchmarks (never timed tests). Each writes its results, with date and machine, under bench/."""
