-- The accounts suppliers are paid on, as the invoices service's reference file says (events
-- SupplierRegistered / SupplierIbanChangeConfirmed): advances and interest are paid there.
CREATE TABLE payees (
    siret           text        PRIMARY KEY,
    name            text        NOT NULL,
    iban            text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    source_event_id uuid        NOT NULL
);

-- An approved invoice becomes payable once both its approval and its advance recovery are known;
-- they arrive on two topics in either order. Each half is kept here until the other one comes.
CREATE TABLE invoice_approvals (
    invoice_id        text        PRIMARY KEY,
    approved          jsonb,
    approved_envelope jsonb,
    recovery          jsonb,
    updated_at        timestamptz NOT NULL
);

-- What the Region owes: an invoice net of its advance recovery, an advance, late interest.
CREATE TABLE payables (
    payable_id      text           PRIMARY KEY,
    kind            text           NOT NULL CHECK (kind IN ('invoice', 'advance', 'interest')),
    invoice_id      text,
    contract_id     text,
    supplier_siret  text,
    payee_name      text,
    payee_iban      text,
    payee_bic       text,
    gross_amount    numeric(14, 2) NOT NULL CHECK (gross_amount >= 0),
    deduction       numeric(14, 2) NOT NULL DEFAULT 0 CHECK (deduction >= 0),
    amount          numeric(14, 2) NOT NULL CHECK (amount >= 0),
    remittance      text           NOT NULL,
    dgp_start       date,
    legal_due       date,
    ordonnateur_due date,
    target_due      date,
    order_on        date,
    urgent          boolean        NOT NULL DEFAULT false,
    status          text           NOT NULL CHECK (status IN ('on_hold', 'scheduled', 'ordered', 'paid')),
    hold_reason     text,
    attempts        integer        NOT NULL DEFAULT 0,
    correlation_id  text           NOT NULL,
    cause           jsonb          NOT NULL,
    created_at      timestamptz    NOT NULL,
    executed_on     date,
    CHECK (amount = gross_amount - deduction),
    CHECK (status <> 'scheduled' OR (order_on IS NOT NULL AND payee_iban IS NOT NULL))
);
CREATE INDEX payables_to_order ON payables (order_on, payable_id) WHERE status = 'scheduled';
CREATE INDEX payables_supplier ON payables (supplier_siret) WHERE status = 'on_hold';

-- One row per scheduled run day, so a restart does not run the same day twice.
CREATE TABLE payment_runs (
    run_date     date        PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    batch_id     text
);

CREATE TABLE payment_batches (
    batch_id       text           PRIMARY KEY,
    run_date       date           NOT NULL,
    channel        text           NOT NULL CHECK (channel IN ('accountant', 'sepa')),
    sequence       integer        NOT NULL,
    created_at     timestamptz    NOT NULL,
    execution_date date           NOT NULL,
    file_name      text           NOT NULL,
    content        bytea          NOT NULL,
    sha256         text           NOT NULL,
    order_count    integer        NOT NULL CHECK (order_count > 0),
    total          numeric(16, 2) NOT NULL,
    triggered_by   text           NOT NULL,
    dispatched_at  timestamptz,
    UNIQUE (run_date, channel, sequence)
);
CREATE INDEX payment_batches_undispatched ON payment_batches (batch_id) WHERE dispatched_at IS NULL;

CREATE TABLE payment_orders (
    order_id               text           PRIMARY KEY,
    payable_id             text           NOT NULL REFERENCES payables,
    attempt                integer        NOT NULL CHECK (attempt >= 1),
    batch_id               text           NOT NULL,
    channel                text           NOT NULL,
    amount                 numeric(14, 2) NOT NULL CHECK (amount >= 0),
    payee_iban             text,
    ordered_on             date           NOT NULL,
    status                 text           NOT NULL CHECK (status IN ('ordered', 'executed', 'failed')),
    executed_on            date,
    failed_on              date,
    failure_reason         text,
    counterparty_reference text,
    UNIQUE (payable_id, attempt)
);
-- Never pay twice: whatever the code does, a payable has at most one order in flight or executed.
CREATE UNIQUE INDEX payment_orders_one_live ON payment_orders (payable_id) WHERE status IN ('ordered', 'executed');

-- Every confirmation file as received (an unreadable one too), and each of its entries with what
-- became of it. An entry matching no order, or contradicting it, is kept for an operator.
CREATE TABLE confirmation_files (
    sha256      text        PRIMARY KEY,
    content     bytea       NOT NULL,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL,
    received_by text        NOT NULL,
    error       text,
    report      jsonb
);

CREATE TABLE confirmations (
    id           bigint         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_sha256  text           NOT NULL REFERENCES confirmation_files,
    order_id     text,
    status       text           NOT NULL,
    executed_on  date,
    amount       numeric(14, 2),
    reason       text,
    reference    text           NOT NULL,
    outcome      text           NOT NULL CHECK (outcome IN ('executed', 'failed', 'duplicate', 'unmatched', 'mismatch')),
    detail       text,
    resolved_at  timestamptz,
    resolved_by  text
);
CREATE INDEX confirmations_open ON confirmations (id) WHERE outcome IN ('unmatched', 'mismatch') AND resolved_at IS NULL;

-- Numbers the settlements of payables fully offset by an advance recovery (nothing to transfer).
CREATE SEQUENCE offset_orders;

-- Every principal paid after its legal due date (L2192-13). The interest is assessed at once; when
-- the half-year's ECB rate is not configured yet, the row waits with the error and is assessed
-- as soon as the rate is known (R2192-31: never a guessed rate).
CREATE TABLE late_payments (
    payable_id   text           PRIMARY KEY REFERENCES payables,
    amount       numeric(14, 2) NOT NULL,
    legal_due    date           NOT NULL,
    paid_on      date           NOT NULL,
    assessed_at  timestamptz,
    error        text
);
CREATE INDEX late_payments_pending ON late_payments (payable_id) WHERE assessed_at IS NULL;
