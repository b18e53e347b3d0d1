"""`csr-webhook approve`: the leader-elected controller that approves (and optionally denies)
pending CSRs by the same policy evaluation the webhook runs."""
