-- One row per approved invoice: what it bore of its contract's advance. The primary key makes a
-- second deduction for the same invoice impossible.
CREATE TABLE recoveries (
    invoice_id      text           PRIMARY KEY,
    contract_id     text           REFERENCES contracts (contract_id),
    approved_amount numeric(14, 2) NOT NULL,
    executed_before numeric(14, 2) NOT NULL,
    deduction       numeric(14, 2) NOT NULL CHECK (deduction >= 0 AND deduction <= approved_amount),
    recovered_after numeric(14, 2) NOT NULL,
    applied_at      timestamptz    NOT NULL
);
CREATE INDEX recoveries_contract ON recoveries (contract_id);
ALTER TABLE advances ADD COLUMN executed numeric(14, 2) NOT NULL DEFAULT 0;
CREATE INDEX contracts_engagements ON contracts USING gin ((terms -> 'engagement_numbers'));
