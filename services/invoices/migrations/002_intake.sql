-- Every document that arrived, byte for byte, keyed by its SHA-256: nothing that arrived is lost,
-- and an identical document sent again is recognised.
CREATE TABLE documents (
    sha256        text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content       bytea       NOT NULL,
    size_bytes    integer     NOT NULL,
    stored_at     timestamptz NOT NULL
);

-- One invoice per distinct document, from its receipt to its intake decision (and, later, on).
CREATE TABLE invoices (
    invoice_id      uuid        PRIMARY KEY,
    document_sha256 text        NOT NULL UNIQUE REFERENCES documents (sha256),
    channel         text        NOT NULL CHECK (channel IN ('http', 'inbox', 'kafka')),
    source          text        NOT NULL,
    received_at     timestamptz NOT NULL,
    status          text        NOT NULL CHECK (status IN ('received', 'validated', 'to_recycle', 'rejected')),
    profile         text,
    format          text,
    number          text,
    seller_siret    text,
    issue_date      date,
    -- supplier SIREN | invoice number | year, held by the invoice that owns that number: a second
    -- invoice with the same key is a duplicate, whatever channel brought it.
    business_key    text        UNIQUE,
    canonical       jsonb,
    reasons         jsonb       NOT NULL DEFAULT '[]',
    warnings        jsonb       NOT NULL DEFAULT '[]',
    decided_at      timestamptz
);
CREATE INDEX invoices_status ON invoices (status);
CREATE INDEX invoices_seller ON invoices (seller_siret);
