"""`trigger.schedule`: an app started by the clock, on a cron expression in a time zone.

The expression has five fields (minute, hour, day of month, month, day of week) or is one of
`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`; it is evaluated in `timezone` (an IANA
name), so `0 9 * * 1-5` in `Europe/Paris` is nine o'clock there, summer and winter. Both are
checked when the graph is validated. The scheduler (`worker/schedules.py`) starts a run of the
app's published version at each tick, with the tick's time as `scheduled_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blocks.base import Block, BlockContext, RunPayload

ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`; ValueError when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time after `after` that the expression names, in UTC."""
    local = after.astimezone(zone(timezone))
    return next(CronSim(ALIASES.get(cron.strip(), cron), local)).astimezone(UTC)


def last_tick(cron: str, timezone: str, at: datetime) -> datetime:
    """The latest time at or before `at` that the expression names, in UTC."""
    local = (at + timedelta(seconds=1)).astimezone(zone(timezone))  # `reverse` is strictly before
    return next(CronSim(ALIASES.get(cron.strip(), cron), local, reverse=True)).astimezone(UTC)


class ScheduleConfig(BaseModel):
    """When the app runs."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(default="0 * * * *", max_length=200, examples=["*/15 * * * *", "0 9 * * 1-5"],
                      description="minute hour day-of-month month day-of-week, or @hourly, @daily, …")
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"],
                          description="IANA time zone the expression is read in.")

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("@") and value not in ALIASES:
            raise ValueError(f"unknown shorthand {value!r}; known: {', '.join(ALIASES)}")
        if not value.startswith("@") and len(value.split()) != 5:
            raise ValueError("a cron expression has five fields: minute hour day-of-month month day-of-week")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _parses(self) -> ScheduleConfig:
        try:
            next_tick(self.cron, self.timezone, datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(f"cron expression {self.cron!r}: {exc}") from None
        return self


class ScheduleInputs(BaseModel):
    """What a scheduled run starts with."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime | None = Field(default=None, description="The tick this run is for (ISO 8601); "
                                          "default: now (a run started by hand, to try the app).")


class ScheduleOutputs(BaseModel):
    """The tick, as the app sees it."""

    scheduled_at: str = Field(description="The tick, ISO 8601 in the schedule's time zone.")
    timezone: str


class ScheduleTriggerBlock(Block[ScheduleConfig, RunPayload, ScheduleOutputs]):
    """Starts the app on a cron schedule; emits the tick it runs for."""

    type = "trigger.schedule"
    title = "Schedule"
    description = "Starts the app on a cron schedule in a time zone (published version, one run per tick)."
    category = "triggers"
    pure = True
    bounded = True
    trigger = True

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The tick, checked; raises ValidationError on anything else."""
        when = ScheduleInputs.model_validate(dict(payload)).scheduled_at or datetime.now(UTC)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return {"scheduled_at": when.astimezone(UTC).isoformat()}

    def next_tick(self, after: datetime) -> datetime:
        """The schedule's first tick after `after`, in UTC."""
        return next_tick(self.config.cron, self.config.timezone, after)

    def run(self, inputs: RunPayload, ctx: BlockContext) -> ScheduleOutputs:
        when = datetime.fromisoformat(self.accept(inputs.model_extra or {})["scheduled_at"])
        return ScheduleOutputs(scheduled_at=when.astimezone(zone(self.config.timezone)).isoformat(),
                               timezone=self.config.timezone)


BLOCKS = [ScheduleTriggerBlock]
