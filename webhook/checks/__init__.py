"""Checks: one module per concern, each `check(context) -> Iterator[Violation]` over the
operation's context (webhook.context: CreateContext, UpdateContext) and a `CODES` frozenset of
the codes it can emit (a subset of webhook.codes). The engine runs them from its CREATE_CHECKS
and UPDATE_CHECKS lists.

A check never raises for bad input (bad input is a violation) and never imports another check.
"""
