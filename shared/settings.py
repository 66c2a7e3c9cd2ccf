"""Configuration from the environment (prefix ``INVOICING_``), one object for every process."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("invoices", "payments", "advances", "audit")

# R2192-31: the ECB main refinancing rate (percent) in force on the first day of each
# half-year (domain-rules.md §2.2); late interest is this rate + 8 points.
ECB_MRO_RATES: dict[str, Decimal] = {
    **{f"{year}-H{half}": Decimal("0.00") for year in range(2019, 2023) for half in (1, 2)},
    "2023-H1": Decimal("2.50"),
    "2023-H2": Decimal("4.00"),
    "2024-H1": Decimal("4.50"),
    "2024-H2": Decimal("4.25"),
    "2025-H1": Decimal("3.15"),
    "2025-H2": Decimal("2.15"),
    "2026-H1": Decimal("2.15"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", env_nested_delimiter="__")

    # A namespace isolates one deployment (or one test run) from another on the same stack:
    # it prefixes every topic and names the database.
    namespace: str = ""

    state_dir: Path = Path("/var/tmp/invoicing")
    cache_dir: Path = Path.home() / ".cache" / "invoicing"

    kafka_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "768m"

    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_admin_user: str = "invoicing_admin"
    pg_admin_password: str = "invoicing-admin-local"
    db_passwords: dict[str, str] = Field(
        default_factory=lambda: {name: f"{name}-local" for name in SERVICES}
    )
    db_pool_max: int = 10

    http_host: str = "127.0.0.1"
    http_ports: dict[str, int] = Field(
        default_factory=lambda: {"invoices": 8101, "payments": 8102, "advances": 8103, "audit": 8104}
    )

    # The Region as the buyer named on invoices (CCP D2192-2: the recipient's SIRET).
    buyer_siret: str = "20005376700014"
    validation_profile: str = "fr-public"
    # R2192-10/-11: which legal delay applies (local_authority: 30 days, the Region).
    buyer_type: str = "local_authority"
    # Above this amount (EUR TTC) the one who certified the service done may not also approve,
    # and no invoice is approved automatically.
    approval_threshold: Decimal = Decimal("25000.00")
    # The advance policy applied to new contracts ("doubled": the Region's 2017 policy).
    advance_policy: str = "doubled"
    # The Region's own payment target, in days from the start of the legal delay.
    target_payment_days: int = 15
    # R2192-31: ECB MRO rates by half-year; INVOICING_ECB_RATES (JSON) adds or corrects half-years.
    ecb_rates: dict[str, Decimal] = Field(default_factory=lambda: dict(ECB_MRO_RATES))
    # D2192-35: the fixed recovery indemnity owed on every late payment (EUR).
    late_interest_indemnity: Decimal = Decimal("40.00")
    # R2192-36: days after the principal's « mise en paiement » to pay interest and indemnity.
    interest_payment_days: int = 45
    # The weekdays payment runs take place (0 = Monday); French public holidays are skipped.
    payment_run_weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    # Décret 2013-269 art. 12: the public accountant's days to pay once the order is received.
    accountant_days: int = 10
    inbox_dir: Path | None = None
    inbox_poll_seconds: float = 1.0

    # Payments. The Region's payment orders go to its public accountant (« mandats », the legal
    # norm) or, for a buyer paying from its own account, to its bank as SEPA credit transfers.
    payment_channel: Literal["accountant", "sepa"] = "accountant"
    buyer_name: str = "Region Hauts-de-France"
    buyer_iban: str = "FR7630001000640000001234559"
    buyer_bic: str | None = "BDFEFRPPCCT"
    # One scheduled payment run per run day, from this time (Europe/Paris) on; a payable whose
    # target no scheduled run meets is ordered at once.
    payment_run_time: time = time(6, 0)
    # When set, a run every so many seconds instead of one per run day (a deployment paying as
    # soon as an invoice is approved, e.g. by instant transfers; the end-to-end benchmark).
    payment_run_every_seconds: float | None = None
    payment_poll_seconds: float = 2.0
    payments_outgoing_dir: Path | None = None

    # Bearer tokens (HS256). The default key is for the local stack only: set
    # INVOICING_JWT_SECRET in any shared deployment.
    jwt_secret: str = "local-development-key-not-for-production-use"
    jwt_issuer: str = "invoicing"
    jwt_audience: str = "invoicing-api"

    clock: str = "system"
    log_level: str = "INFO"
    failpoints: str = ""

    relay_batch_size: int = 500
    relay_poll_seconds: float = 1.0
    consumer_batch_size: int = 500
    consumer_max_attempts: int = 5

    # The audit log: the topics it records, and how often it publishes its chain heads (seconds
    # of the configured clock; a day by default) to ``audit.checkpoints`` and the state folder.
    audit_topics: list[str] = Field(
        default_factory=lambda: ["invoices.events", "advances.events", "payments.events"]
    )
    audit_checkpoint_seconds: float = Field(default=86400.0, gt=0)

    @field_validator("ecb_rates")
    @classmethod
    def _keep_known_ecb_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        # Setting next half-year's rate must not drop the past ones still owed on old payments.
        return {**ECB_MRO_RATES, **rates}

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def database(self) -> str:
        return f"invoicing_{self.namespace}" if self.namespace else "invoicing"

    @property
    def inbox(self) -> Path:
        """The watched drop folder (SFTP/EDI landing point) of this namespace."""
        return self.inbox_dir or self.state_dir / "inbox" / (self.namespace or "default")

    @property
    def payments_outgoing(self) -> Path:
        """Where payment files are dropped for the accountant's or the bank's channel."""
        return self.payments_outgoing_dir or self.state_dir / "payments" / (self.namespace or "default") / "outgoing"

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    def admin_dsn(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{self.pg_admin_user}:{self.pg_admin_password}"
            f"@{self.pg_host}:{self.pg_port}/{database}"
        )

    def service_dsn(self, service: str) -> str:
        return (
            f"postgresql://{service}:{self.db_passwords[service]}"
            f"@{self.pg_host}:{self.pg_port}/{self.database}"
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
