-- The legal payment delay of each validated invoice (dates in the French calendar).
ALTER TABLE invoices
    ADD COLUMN buyer_type      text,
    ADD COLUMN dgp_start       date,
    ADD COLUMN legal_due       date,
    ADD COLUMN ordonnateur_due date,
    ADD COLUMN target_due      date;
CREATE INDEX invoices_open_legal_due ON invoices (legal_due) WHERE status = 'validated';
