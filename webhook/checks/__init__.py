"""Checks: one module per concern, each a pure `check(...) -> Iterator[Violation]`.

A check never raises for bad input (bad input is a violation) and never imports another check.
"""
