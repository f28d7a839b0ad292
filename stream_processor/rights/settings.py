"""Where the rights database lives (env prefix ``FACEGATE_RIGHTS_``).

Unset: SQLite under the state directory, right for a single host. A deployment with
processes on more than one host sets ``FACEGATE_RIGHTS_DSN`` to one PostgreSQL
database that all of them share (erasure progress, receipts, tokens, key cards, the
device registry): nothing one host keeps is then needed by another.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RightsDbSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_RIGHTS_", extra="forbid")

    dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL DSN of the rights database shared by every host "
        "(postgresql://user:pass@host:port/db); unset = SQLite <state>/rights/rights.sqlite",
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, le=300, description="how long a process waits for PostgreSQL to answer"
    )
