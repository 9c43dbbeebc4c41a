"""`pgolf reproduce` and `pgolf probe`: re-run a record under torchrun in a sandbox and compare with its claims.

plan (what to run) → preflight (can it run here?) → run (sandboxed torchrun, one seed at a time)
→ verdict (the new logs read by the same parsers as `pgolf audit`) → report + run directory.
Probes (``probes``) run a record's scorer on tiny inputs to test causality, normalisation and the
score-before-update ledger. Nothing here imports torch or the record's code: record code runs only
in child processes, inside the sandbox when one is available.
"""
