-- The advance decided for each contract (granted or not, and why) and what became of it.
CREATE TABLE advances (
    contract_id               text           PRIMARY KEY REFERENCES contracts (contract_id),
    policy_version            text           NOT NULL,
    mandatory                 boolean        NOT NULL,
    reason                    text           NOT NULL,
    rate_pct                  numeric(7, 4)  NOT NULL,
    rate_from_contract        boolean        NOT NULL,
    base                      numeric(14, 2) NOT NULL,
    amount                    numeric(14, 2) NOT NULL CHECK (amount >= 0),
    guarantee_may_be_required boolean        NOT NULL,
    recovery_start_pct        numeric(7, 4)  NOT NULL,
    recovery_end_pct          numeric(7, 4)  NOT NULL,
    recovery_prorata_pct      numeric(7, 4),
    delay_starts_on           date,
    delay_start_reason        text           NOT NULL,
    legal_due                 date,
    target_due                date,
    warnings                  jsonb          NOT NULL DEFAULT '[]',
    paid                      numeric(14, 2) NOT NULL DEFAULT 0,
    recovered                 numeric(14, 2) NOT NULL DEFAULT 0 CHECK (recovered <= amount),
    decided_at                timestamptz    NOT NULL
);
