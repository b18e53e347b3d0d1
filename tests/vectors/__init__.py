"""Decision-level test vectors: YAML suites and hand-made CSRs (see README.md)."""
