"""Tools for policy authors: `csr-webhook test` (PolicyTest suites) and `eval`
(docs/policy-tests.md).

Built on the decision core, never imported by it: every verdict comes from the server's engine.
"""
