"""The clinic's outcome report, as every edge asks for it: decided, recorded, caught up, aggregated.

Who may read it is `course.access.may_read_report`; the read is recorded in the access log (one row,
naming no course) before it is answered, as every read is. The thresholds are the clinic's current
policy's (`outcomes` of the policy courses open on), so a newly published MCID applies to the next
report without rebuilding anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from application.outcomes import OutcomeProjection
from application.reads import ReadRefused
from course.access import Read, Refused, may_read_report
from course.cohorts import OutcomeReport, outcome_report
from course.commands import Actor
from course.policy import CoursePolicy, OutcomePolicy
from course.publication import DEFAULT_POLICY_NAME
from trust.access_log import AccessLog, Channel

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OutcomeReports:
    pool: asyncpg.Pool
    channel: Channel
    clinic_policy: str = DEFAULT_POLICY_NAME

    async def outcomes(self, actor: Actor, now: datetime, since: datetime | None = None) -> OutcomeReport:
        decision = may_read_report(actor)
        if isinstance(decision, Refused):
            log.info("report refused", staff=actor.id, what=Read.OUTCOMES_REPORT.value, code=decision.code)
            raise ReadRefused(decision.code, decision.sentence)
        await AccessLog(self.pool).append_report(actor, Read.OUTCOMES_REPORT, self.channel)
        projection = OutcomeProjection(self.pool)
        await projection.catch_up()
        return outcome_report(await projection.outcomes(since), await self.thresholds(), now, since)

    async def thresholds(self) -> OutcomePolicy:
        body = await self.pool.fetchval(
            "SELECT body FROM clinic_policies WHERE name = $1 ORDER BY version DESC LIMIT 1", self.clinic_policy
        )
        return CoursePolicy.model_validate_json(body).outcomes if body is not None else OutcomePolicy()
