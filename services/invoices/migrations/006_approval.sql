-- Why an invoice waits for a person rather than being approved automatically.
ALTER TABLE invoices ADD COLUMN approval_waits_for jsonb NOT NULL DEFAULT '[]';
