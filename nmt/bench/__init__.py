"""Benchmark harnesses: ``nmt bench``, the peers, contention, the GPU check and serve load."""
