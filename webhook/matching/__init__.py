"""Pattern matching for policy values (docs/policy-reference.md §7), one module per concern:
variables (template variables and the requester), fields (pattern syntax and the linear-time
field matcher), ip (networks as integers), patterns (compile_pattern, Pattern), lists
(PatternList), shown (patterns in messages), subjects (Subjects). Pure Python; imports no Flask
or prometheus_client, nor the policy model or the checks."""
