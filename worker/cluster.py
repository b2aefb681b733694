"""Search attributes on a Temporal cluster: check that they exist, register them if allowed."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from workflows.search_attributes import ALL, cli_definitions


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return [key.name for key in ALL if key.name not in listed.custom_attributes]


async def register_search_attributes(client: Client, namespace: str, *, check_first: bool = True) -> list[str]:
    """Register whichever of ours are missing; returns their names.

    `check_first=False` is for Temporal's time-skipping test server, which can add search
    attributes but cannot list them.
    """
    missing = await missing_search_attributes(client, namespace) if check_first else [k.name for k in ALL]
    if missing:
        wanted = {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL if key.name in missing}
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=wanted)
        )
    return missing


def registration_commands(namespace: str, address: str = "localhost:7233") -> list[str]:
    """What an operator runs on a real cluster (the worker prints these when any are missing)."""
    return [
        f"temporal operator search-attribute create --address {address} --namespace {namespace} "
        f"--name {name} --type {kind}"
        for name, kind in cli_definitions()
    ]
