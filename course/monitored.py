"""One monitored session as the course keeps it: the dose given and the readings taken since.

Value types only (no rules: those are in course/phases/monitoring.py), so the state can hold them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from course.commands import BloodPressure, Dissociation, DoseMgPerKg, SedationScale, SideEffect

if TYPE_CHECKING:  # events import the state's types; only the annotation needs these
    from course.commands import RecordMonitoringReading
    from course.events import MonitoringReadingRecorded


class Reading(BaseModel):
    """One set of observations in the chair."""

    model_config = ConfigDict(frozen=True)

    taken_at: AwareDatetime
    blood_pressure: BloodPressure
    heart_rate: int = Field(ge=20, le=250)
    spo2: int = Field(ge=50, le=100)
    sedation_scale: SedationScale = SedationScale.MOAAS
    sedation_score: int = Field(ge=0, le=5)
    dissociation: Dissociation
    side_effects: list[SideEffect] = Field([], max_length=12)

    @classmethod
    def of(cls, observed: RecordMonitoringReading | MonitoringReadingRecorded) -> Reading:
        """The reading a step carries, or the event that recorded it (the same fields)."""
        return cls(
            taken_at=observed.taken_at,
            blood_pressure=observed.blood_pressure,
            heart_rate=observed.heart_rate,
            spo2=observed.spo2,
            sedation_scale=observed.sedation.scale,
            sedation_score=observed.sedation.score,
            dissociation=observed.dissociation,
            side_effects=list(observed.side_effects),
        )


class MonitoredSession(BaseModel):
    """A dose given and what has been observed since; folded from the session's events."""

    model_config = ConfigDict(frozen=True)

    session_number: int
    route: str
    dose_mg_per_kg: DoseMgPerKg
    given_at: AwareDatetime
    readings: list[Reading] = []

    @property
    def last(self) -> Reading | None:
        return self.readings[-1] if self.readings else None
