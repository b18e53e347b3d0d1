"""Benchmarks of csr-webhook against a no-op Flask webhook on the same server; see README.md."""
