"""One-command deploys: preflight, deploy, rollback, the ledger."""
