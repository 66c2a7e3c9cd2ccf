-- The audit log: one row per record of every audited partition, in offset order, each chained
-- to the previous row of its partition by its hash (services/audit/domain/chain.py).
CREATE TABLE audit_log (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           text        NOT NULL,
    partition       integer     NOT NULL CHECK (partition >= 0),
    seq             bigint      NOT NULL CHECK (seq >= 1),
    kafka_offset    bigint      NOT NULL CHECK (kafka_offset >= 0),
    kafka_key       bytea,
    kafka_timestamp timestamptz,
    received_at     timestamptz NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('event', 'raw', 'duplicate')),
    value_sha256    text        NOT NULL CHECK (value_sha256 ~ '^[0-9a-f]{64}$'),
    event_id        uuid,
    event_type      text,
    schema_version  integer,
    occurred_at     timestamptz,
    producer        text,
    aggregate_type  text,
    aggregate_id    text,
    correlation_id  text,
    causation_id    uuid,
    actor           text,
    payload         jsonb,
    subjects        text[]      NOT NULL DEFAULT '{}',
    raw             bytea,
    note            text,
    hash            bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT audit_log_position UNIQUE (topic, partition, seq),
    CONSTRAINT audit_log_offset UNIQUE (topic, partition, kafka_offset),
    CONSTRAINT audit_log_event_complete CHECK (
        kind <> 'event' OR (event_id IS NOT NULL AND event_type IS NOT NULL AND occurred_at IS NOT NULL
                            AND actor IS NOT NULL AND payload IS NOT NULL))
);
-- An event is recorded once; its later deliveries are 'duplicate' rows.
CREATE UNIQUE INDEX audit_log_event_once ON audit_log (event_id) WHERE kind = 'event';
CREATE INDEX audit_log_received ON audit_log (received_at, id);
CREATE INDEX audit_log_subjects ON audit_log USING gin (subjects);
CREATE INDEX audit_log_actor ON audit_log (actor, occurred_at) WHERE kind = 'event';

-- Append-only for everyone: the recorder's role loses UPDATE, DELETE and TRUNCATE (it keeps
-- INSERT and SELECT), and these triggers refuse the statements to any role, the table's owner
-- and superusers included. ENABLE ALWAYS: they fire even under session_replication_role =
-- replica. Whoever can still disable them (the owner, a superuser) cannot do it unseen: the
-- hash chain and the checkpoints published outside the database reveal the change.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'records are never changed or removed; a correction is a new event';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM CURRENT_USER;
