"""One monitored session as the course keeps it: the dose given and the readings taken since.

Value types only (no rules: those are in course/phases/monitoring.py), so the state can hold them.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from course.commands import BloodPressure, Dissociation, DoseMgPerKg, SedationScale, SideEffect


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
