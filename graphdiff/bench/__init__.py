"""Benchmarks: our rows printed beside the published ones."""
