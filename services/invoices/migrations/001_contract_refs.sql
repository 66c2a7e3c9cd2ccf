-- Contracts as the invoice service knows them, from ContractNotified: used to check that an
-- invoice names a known contract or engagement of the right supplier.
CREATE TABLE contract_refs (
    contract_id        text           PRIMARY KEY,
    supplier_siret     text           NOT NULL,
    amount_ttc         numeric(14, 2) NOT NULL,
    notified_on        date           NOT NULL,
    engagement_numbers text[]         NOT NULL,
    source_event_id    uuid           NOT NULL
);
CREATE INDEX contract_refs_supplier ON contract_refs (supplier_siret);
