"""Configuration from the environment (prefix ``INVOICING_``), one object for every process."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("invoices", "payments", "advances")


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
        default_factory=lambda: {"invoices": 8101, "payments": 8102, "advances": 8103}
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
    inbox_dir: Path | None = None
    inbox_poll_seconds: float = 1.0

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
