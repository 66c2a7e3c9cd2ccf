-- The payment leg, as the payments service reports it: the order (« mandat » sent to the
-- accountant or the bank), the « mise en paiement » that ends the legal delay, a failure.
ALTER TABLE invoices
    ADD COLUMN payment_order_id     text,
    ADD COLUMN payment_ordered_on   date,
    ADD COLUMN paid_on              date,
    ADD COLUMN paid_amount          numeric(14, 2),
    ADD COLUMN paid_days_late       integer,
    ADD COLUMN payment_failure      text;
CREATE INDEX invoices_paid_on ON invoices (paid_on) WHERE paid_on IS NOT NULL;
