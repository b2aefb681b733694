"""`/policies`: clinic admins publish the clinic's course policies; any staff member reads them."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from api.policies import PublishedPolicy, PublishedVersion
from api.problems import PROBLEMS, Problem
from api.services import Services
from course.publication import MAX_POLICY_VERSION, POLICY_NAME_PATTERN, PolicyRefused, for_publication

PolicyName = Annotated[str, Path(pattern=POLICY_NAME_PATTERN, max_length=64)]


class PublishPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=POLICY_NAME_PATTERN, description="Default: the clinic's policy.")
    policy: dict[str, Any] = Field(
        description="A CoursePolicy (the `policy` of PublishedPolicy has its schema): every field it leaves out "
        "is the built-in default, and the published body lists them all."
    )


def policy_problem(refused: PolicyRefused) -> Problem:
    if refused.code == "role_not_permitted":
        return Problem(HTTPStatus.FORBIDDEN, refused.message, code=refused.code)
    extra = {"errors": refused.errors} if refused.errors else {}
    return Problem(HTTPStatus.UNPROCESSABLE_ENTITY, refused.message, code=refused.code, **extra)


def policy_router(services: Services, member: Any) -> APIRouter:
    router = APIRouter(tags=["policies"])

    @router.post("/policies", status_code=201, responses={403: PROBLEMS[403]})
    async def publish_policy(
        body: Annotated[PublishPolicy, Body()], actor: member, response: Response
    ) -> PublishedPolicy:
        """Publish a new version of a policy (clinic admins only). New courses open on it; open ones keep
        theirs. The same body as the current version publishes nothing: `200` with that version."""
        try:
            policy = for_publication(body.policy)
            published, new = await services.policies.publish(body.name or services.clinic_policy, policy, actor)
        except PolicyRefused as refused:
            raise policy_problem(refused) from None
        response.status_code = HTTPStatus.CREATED if new else HTTPStatus.OK
        response.headers["Location"] = f"/policies/{published.name}/{published.version}"
        return published

    @router.get("/policies")
    async def policy_versions(_: member) -> list[PublishedVersion]:
        """Every published version of every policy: who published it, when, its hash, and which is current."""
        return await services.policies.versions()

    @router.get("/policies/{name}", responses={404: PROBLEMS[404]})
    async def current_policy(name: PolicyName, _: member) -> PublishedPolicy:
        """The version new courses open on when they name this policy."""
        return _found(await services.policies.get(name))

    @router.get("/policies/{name}/{version}", responses={404: PROBLEMS[404]})
    async def policy_version(
        name: PolicyName, version: Annotated[int, Path(ge=1, le=MAX_POLICY_VERSION)], _: member
    ) -> PublishedPolicy:
        return _found(await services.policies.get(name, version))

    return router


def _found(published: PublishedPolicy | None) -> PublishedPolicy:
    if published is None:
        raise Problem(HTTPStatus.NOT_FOUND, "No such policy version; `GET /policies` lists those published.")
    return published
