"""Which event store a process uses, and where PostgreSQL lives (env prefix ``FACEGATE_``).

``FACEGATE_STORE=postgres`` makes ``facegate stack up`` start a private
PostgreSQL cluster under the state directory and makes workers write to it.
``FACEGATE_POSTGRES_DSN`` points at an external server instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_", extra="ignore")

    store: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="event store: embedded SQLite or PostgreSQL"
    )
    sqlite_secure_delete: bool = Field(
        True,
        description=(
            "SQLite overwrites deleted rows with zeros (PRAGMA secure_delete): an erased"
            " or expired row does not survive in a free page"
        ),
    )
    postgres_dsn: SecretStr | None = Field(
        None, description="external PostgreSQL; unset = the stack's own cluster"
    )
    postgres_port: int = Field(5433, ge=1, le=65535, description="port of the stack's cluster")
    postgres_db: str = Field("facegate", description="database name")
    postgres_user: str = Field("facegate", description="database role the project creates")
    postgres_bin: Path | None = Field(
        None, description="folder with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin"
    )
    postgres_os_user: str = Field(
        "postgres", description="OS user that owns and runs the cluster when started as root"
    )
