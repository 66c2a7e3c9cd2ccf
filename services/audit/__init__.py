"""Audit service: every event of every domain topic recorded append-only in hash chains, with
checkpoints published outside the database; history, verification and export for auditors."""
