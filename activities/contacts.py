"""Where notifications find their recipients: the clinic's directory, read at delivery time.

Addresses never travel in workflow payloads (they would sit in Temporal history for years):
the workflow names a recipient by kind and opaque id, and the activity looks the address up
here just before delivering, so a changed address is used from the next reminder on.
"""

from __future__ import annotations

import asyncpg

from activities.ports import NURSE_ON_DUTY, Contact, Recipient


class StaticContactDirectory:
    """Contacts held in memory: for tests, and for a clinic that configures a few staff addresses."""

    def __init__(
        self,
        patients: dict[str, Contact] | None = None,
        staff: dict[str, Contact] | None = None,
        operations: Contact | None = None,
    ) -> None:
        self.patients = dict(patients or {})
        self.staff = dict(staff or {})
        self.operations = operations

    async def contact_for(self, recipient: Recipient, recipient_id: str | None) -> Contact | None:
        if recipient == "operations":
            on_duty = self.staff.get(NURSE_ON_DUTY) if recipient_id == NURSE_ON_DUTY else None
            return on_duty or self.operations
        if recipient_id is None:
            return None
        book = self.patients if recipient == "patient" else self.staff
        return book.get(recipient_id)


class PostgresContactDirectory:
    """`patient_contacts` by pseudonymous patient id, `staff_contacts` by staff id.

    Operations is a team, not a person: its address comes from configuration
    (NOTIFY_OPERATIONS_EMAIL) or, when that is unset, the `staff_contacts` row `operations`. The
    nurse on duty is a shift: the row `nurse-on-duty` when the clinic keeps one, else operations.
    """

    def __init__(self, pool: asyncpg.Pool, operations: Contact | None = None) -> None:
        self._pool = pool
        self._operations = operations

    async def contact_for(self, recipient: Recipient, recipient_id: str | None) -> Contact | None:
        if recipient == "operations":
            if recipient_id == NURSE_ON_DUTY and (on_duty := await self._staff(NURSE_ON_DUTY)) is not None:
                return on_duty
            if self._operations is not None:
                return self._operations
            recipient_id = "operations"
        if recipient_id is None:
            return None
        if recipient == "patient":
            row = await self._pool.fetchrow(
                "SELECT email, phone, display_name, time_zone FROM patient_contacts WHERE patient_id = $1",
                recipient_id,
            )
            return Contact(**dict(row)) if row is not None else None
        return await self._staff(recipient_id)

    async def _staff(self, staff_id: str) -> Contact | None:
        row = await self._pool.fetchrow(
            "SELECT email, phone, display_name, time_zone FROM staff_contacts WHERE staff_id = $1", staff_id
        )
        return Contact(**dict(row)) if row is not None else None
