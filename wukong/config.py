"""wukong's configuration: one pydantic model, read from four places.

Precedence, highest first: keyword arguments (``wukong.Client(storage="redis://...")``), ``WUKONG_*``
environment variables (``WUKONG_STORAGE``, ``WUKONG_COMPUTE_OPTIONS='{"workers": 4}'``), a
``wukong.toml`` file in the working directory, the ``[tool.wukong]`` table of ``pyproject.toml``,
and the defaults. The model is validated when built and frozen after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wukong.errors import ConfigError

CONFIG_FILE = "wukong.toml"


class LocalitySettings(BaseModel):
    """How executors keep big objects local (see ``docs/architecture.md``); each can be turned off.

    Attributes:
        clustering: an executor whose output is at least ``big_object_bytes`` (serialized) runs
            every ready successor itself instead of invoking executors that would read it.
        big_object_bytes: the size from which an output counts as big.
        delayed_io: an executor holding a big output that a not-yet-ready successor needs waits
            for that successor's other inputs, up to ``delayed_io_seconds`` (and never past the
            compute backend's remaining time), then runs it itself instead of writing the output.
        delayed_io_seconds: the longest such a wait.
        locality_cache: executors keep outputs they made or read, within ``cache_bytes``, so
            later tasks of the same executor never read them from storage again.
        cache_bytes: the memory budget of an executor's cache (outputs a task is about to use are
            kept regardless).

    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clustering: bool = True
    big_object_bytes: int = Field(default=4 * 2**20, ge=0)
    delayed_io: bool = True
    delayed_io_seconds: float = Field(default=10.0, ge=0)
    locality_cache: bool = True
    cache_bytes: int = Field(default=2**30, ge=0)


class MonitoringSettings(BaseModel):
    """What a job shows while it runs and records for later (see ``docs/monitoring.md``).

    Attributes:
        progress: a progress bar on standard error for jobs that run over a second; ``None``
            shows it only when standard error is a terminal.
        task_records: executors record when each task read, computed, wrote and invoked
            (``client.last_job.metrics.tasks``, ``wukong report``).
        log_lines: how many of an executor's last log lines a failed task's error carries.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    progress: bool | None = None
    task_records: bool = True
    log_lines: int = Field(default=100, ge=0)


class WukongConfig(BaseSettings):
    """Everything a client needs to know; see ``docs/configuration.md``.

    Attributes:
        compute: the compute backend's name (``local``, or a plugin's).
        compute_options: keyword options of the compute backend (``{"workers": 4, "mode": "threads"}``).
        storage: the store's name (``embedded``, ``redis``, ``ideal``, or a plugin's), or a URL whose
            scheme names it (``redis://127.0.0.1:6379/0``).
        storage_options: keyword options of the store.
        data_storage: a second store for task outputs only (``s3``, say), or ``None`` for the
            ``storage`` store to hold everything. ``storage`` then keeps the counters, records and
            schedules, so it must have atomic counters.
        data_storage_options: keyword options of the data store.
        timeout: seconds a job may run before it fails with :class:`~wukong.errors.JobTimeoutError`;
            ``None`` waits as long as the compute backend's workers are alive.
        cleanup_timeout: seconds the client waits, at the end of a job, for executors still running
            before it removes the job's keys. After its store failed or lost the job, the client
            removes the job's keys by prefix until none has appeared for this long.
        key_ttl: seconds every key a job writes lives at most, on stores that can expire keys
            (Redis, embedded, sharded Redis, memcached; see ``docs/reliability.md`` for S3): the
            backstop that removes a job's keys even when its client dies before its clean-up.
            It must exceed ``timeout``; ``None`` keeps keys until the clean-up or ``wukong gc``.
        page_tasks: tasks per schedule page, the unit in which executors read the plan.
        plan_memory_bytes: the client memory one job's plan may take. A graph whose plan would
            need more (about :data:`~wukong.core.graph.PLAN_BYTES_PER_TASK` a task) is refused
            with :class:`~wukong.errors.GraphError` before anything runs; ``None``: half of this
            machine's memory.
        locality: big-object optimisations (:class:`LocalitySettings`).
        monitoring: progress bar, task records and executor logs (:class:`MonitoringSettings`).
        scheduling: ``decentralized`` (executors schedule each other: wukong) or ``centralized``
            (the client invokes one executor per ready task: the PDSW'19 strawman, for
            experiments only).

    """

    model_config = SettingsConfigDict(
        env_prefix="WUKONG_",
        extra="forbid",
        frozen=True,
        toml_file=CONFIG_FILE,
        pyproject_toml_table_header=("tool", "wukong"),
    )

    compute: str = "local"
    compute_options: dict[str, Any] = Field(default_factory=dict)
    storage: str = "embedded"
    storage_options: dict[str, Any] = Field(default_factory=dict)
    data_storage: str | None = None
    data_storage_options: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)
    cleanup_timeout: float = Field(default=30.0, ge=0)
    key_ttl: int | None = Field(default=24 * 3600, gt=0)
    page_tasks: int = Field(default=1024, ge=1)
    plan_memory_bytes: int | None = Field(default=None, gt=0)
    locality: LocalitySettings = Field(default_factory=LocalitySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    scheduling: Literal["decentralized", "centralized"] = "decentralized"

    @model_validator(mode="after")
    def _keys_outlive_jobs(self) -> Self:
        if self.key_ttl is not None and self.timeout is not None and self.timeout >= self.key_ttl:
            raise ValueError(
                f"key_ttl ({self.key_ttl} s) must exceed timeout ({self.timeout:g} s): a job's keys "
                "would expire while it may still run"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then ``wukong.toml``, then ``pyproject.toml``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(CONFIG_FILE).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls))
        sources.append(PyprojectTomlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_config(**overrides: Any) -> WukongConfig:
    """Build the configuration, ignoring ``None`` overrides; bad settings raise :class:`ConfigError`."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return WukongConfig(**given)
    except ValidationError as error:
        raise ConfigError(f"invalid wukong configuration:\n{error}") from None
