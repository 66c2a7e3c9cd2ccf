"""The audit log's pure rules: records and their canonical form, hash chains and their
verification, invoices rebuilt from events."""
