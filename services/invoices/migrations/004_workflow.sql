-- The invoice's life after intake: who did what, when, and the state it is in.
ALTER TABLE invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check CHECK (status IN (
    'received', 'validated', 'to_recycle', 'rejected', 'service_done', 'approved',
    'payment_ordered', 'paid', 'interrupted', 'completed', 'refused'));
ALTER TABLE invoices
    ADD COLUMN submitted_by        text,
    ADD COLUMN service_done_on     date,
    ADD COLUMN service_done_by     text,
    ADD COLUMN approved_by         text,
    ADD COLUMN approved_at         timestamptz,
    ADD COLUMN interrupted_on      date,
    ADD COLUMN interruption_reason text,
    ADD COLUMN missing_items       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN completed_on        date,
    ADD COLUMN refusal_reason      text,
    ADD COLUMN refused_by          text;
