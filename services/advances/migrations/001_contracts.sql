CREATE TABLE contracts (
    contract_id           text        PRIMARY KEY,
    supplier_siret        text        NOT NULL,
    supplier_name         text        NOT NULL,
    sme                   boolean     NOT NULL,
    contract_type         text        NOT NULL CHECK (contract_type IN ('works', 'supplies', 'services')),
    amount_ht             numeric(14, 2) NOT NULL CHECK (amount_ht > 0),
    amount_ttc            numeric(14, 2) NOT NULL CHECK (amount_ttc >= amount_ht),
    duration_months       integer     NOT NULL CHECK (duration_months > 0),
    notified_on           date        NOT NULL,
    terms                 jsonb       NOT NULL,
    notified_by           text        NOT NULL,
    recorded_at           timestamptz NOT NULL,
    notification_event_id uuid        NOT NULL UNIQUE
);
CREATE INDEX contracts_supplier ON contracts (supplier_siret);
