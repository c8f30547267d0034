"""Settings: flags win over environment (CCV_*), environment over a ccv.toml file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite:///ccv.db"


def normalize_database_url(url: str) -> str:
    """Point PostgreSQL URLs at psycopg 3, whatever spelling the user gave."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Everything ccv reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CCV_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    cache_prefix: str = "ccv"
    cache_ttl_seconds: int = 1800
    # A dead Redis must cost milliseconds, not seconds.
    redis_timeout_seconds: float = 0.05
    # After a Redis error, reads skip Redis this long before trying it again.
    redis_retry_seconds: float = 1.0
    config_file: Path | None = None
    # Rows per sweep transaction: large enough to amortise the commit and the job lock, small
    # enough that a batch holds its row locks for well under a second.
    batch_size: int = 20000
    llm_model: str | None = None
    llm_api_base: str | None = None
    llm_timeout_seconds: float = 60.0
    llm_retries: int = 1
    # The requirements files the scheduled extraction flow watches (flows/extract.py).
    requirements_dir: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_database_url(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_path())
        return (init_settings, env_settings, toml)


def _config_path() -> Path:
    explicit = os.environ.get("CCV_CONFIG_FILE") or os.environ.get("CCV_CONFIG")
    return Path(explicit) if explicit else Path("ccv.toml")


def load_settings(**overrides: Any) -> Settings:
    """Settings with explicit overrides (CLI flags); None values mean 'not given'.

    A malformed ccv.toml or a value of the wrong type is a usage error in one sentence.
    """
    import tomllib

    from pydantic import ValidationError

    from ccv.errors import UsageError

    try:
        return _load_settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        path = overrides.get("config_file") or _config_path()
        raise UsageError(f"the settings file {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise UsageError(
            f"setting {where} (CCV_{where.upper()}): {first.get('msg', 'invalid value')}"
        ) from None


def _load_settings(**overrides: Any) -> Settings:
    given = {key: value for key, value in overrides.items() if value is not None}
    config_file = given.get("config_file")
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            from ccv.errors import UsageError

            raise UsageError(f"config file {path} does not exist")
        previous = os.environ.get("CCV_CONFIG_FILE")
        os.environ["CCV_CONFIG_FILE"] = str(path)
        try:
            return Settings(**given)
        finally:
            if previous is None:
                del os.environ["CCV_CONFIG_FILE"]
            else:
                os.environ["CCV_CONFIG_FILE"] = previous
    return Settings(**given)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
