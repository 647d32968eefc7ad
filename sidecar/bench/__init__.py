"""Benchmarks: the model step alone (`bench-model`) and whole servers under load (`bench`)."""
