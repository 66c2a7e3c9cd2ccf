-- Reference data the automatic approval compares invoices with (domain-rules.md §5.3): the
-- suppliers with the account they are paid on, and the budget commitments (« engagements »).

CREATE TABLE suppliers (
    siret         text        PRIMARY KEY CHECK (siret ~ '^[0-9]{14}$'),
    name          text        NOT NULL CHECK (name <> ''),
    sme           boolean     NOT NULL,
    -- The account payments go to. It changes only through a confirmed supplier_iban_changes row.
    iban          text        NOT NULL CHECK (iban ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$'),
    registered_by text        NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Every request to pay a supplier on another account, and its decision. Anti-fraud: the person
-- who decides is never the person who asked (four eyes), and a supplier has at most one
-- request waiting, so a confirmer cannot be shown one IBAN and confirm another.
CREATE TABLE supplier_iban_changes (
    change_id        uuid        PRIMARY KEY,
    siret            text        NOT NULL REFERENCES suppliers (siret),
    current_iban     text        NOT NULL,
    new_iban         text        NOT NULL CHECK (new_iban ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$'),
    justification    text        NOT NULL,
    requested_by     text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    request_event_id uuid        NOT NULL UNIQUE,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'confirmed', 'rejected')),
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text,
    CHECK (new_iban <> current_iban),
    CHECK ((status = 'pending') = (decided_by IS NULL) AND (decided_by IS NULL) = (decided_at IS NULL)),
    CONSTRAINT supplier_iban_changes_four_eyes CHECK (lower(decided_by) <> lower(requested_by))
);
CREATE UNIQUE INDEX supplier_iban_changes_one_pending ON supplier_iban_changes (siret)
    WHERE status = 'pending';
CREATE INDEX supplier_iban_changes_by_supplier ON supplier_iban_changes (siret, requested_at);

-- Budget commitments. The remaining credit is what invoices may still consume.
CREATE TABLE engagements (
    number                 text           PRIMARY KEY,
    supplier_siret         text           NOT NULL REFERENCES suppliers (siret),
    amount                 numeric(14, 2) NOT NULL CHECK (amount > 0),
    remaining              numeric(14, 2) NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    service_done_automatic boolean        NOT NULL,
    recorded_by            text           NOT NULL,
    recorded_at            timestamptz    NOT NULL
);
CREATE INDEX engagements_supplier ON engagements (supplier_siret);
