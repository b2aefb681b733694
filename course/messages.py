"""How the domain's models treat fields they do not know: tolerant between versions, strict with people.

Rolling deploys: update payloads, stored events, start inputs and snapshots cross worker
versions, so every model that travels ignores fields it does not know; an old worker that
refused a new optional field would fail the workflow task in a loop. People are held to the
schema at the edges instead: the CLI and the API validate what a person sends with
`extra="forbid"` (a typo, or an `actor` in a step's body, is refused), and the JSON schema of what
people send says `additionalProperties: false`, so the OpenAPI document and `course record
--schema` still tell a caller exactly what is accepted.
"""

from __future__ import annotations

from pydantic import ConfigDict

# JSON has no NaN or infinity (pydantic writes them as null): a model that holds one cannot be
# read back, so none is accepted in the first place.
BETWEEN_VERSIONS = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)
AS_PEOPLE_SEND_IT = ConfigDict(
    frozen=True, extra="ignore", allow_inf_nan=False, json_schema_extra={"additionalProperties": False}
)
