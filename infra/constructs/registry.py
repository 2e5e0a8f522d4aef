"""DynamoDB: the assets registry.

The assets table is declared *from* ``medialens.adapters.registry.dynamodb.table_definition``, the same
request the emulated profile sends to CreateTable, so keys and the status index cannot drift
between local runs and AWS.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.naming import DataNames
from medialens.adapters.registry.dynamodb import table_definition

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
    "INCLUDE": dynamodb.ProjectionType.INCLUDE,
}


def _keys(key_schema: list[dict[str, str]], types: dict[str, str]) -> dict[str, dynamodb.Attribute]:
    keys: dict[str, dynamodb.Attribute] = {}
    for key in key_schema:
        name = key["AttributeName"]
        role = "partition_key" if key["KeyType"] == "HASH" else "sort_key"
        keys[role] = dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[types[name]])
    return keys


class Registry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, names: DataNames) -> None:
        super().__init__(scope, construct_id)
        definition: dict[str, Any] = table_definition(names.assets_table)
        if definition["BillingMode"] != "PAY_PER_REQUEST":
            raise ValueError("the registry's table definition is expected to be on-demand")
        types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
        recovery = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)

        self.assets = dynamodb.Table(
            self,
            "Assets",
            table_name=definition["TableName"],
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=recovery,
            removal_policy=config.removal_policy,
            deletion_protection=config.retain_data,
            **_keys(definition["KeySchema"], types),  # type: ignore[arg-type]
        )
        for index in definition.get("GlobalSecondaryIndexes", []):
            projection = index["Projection"]
            self.assets.add_global_secondary_index(
                index_name=index["IndexName"],
                projection_type=_PROJECTIONS[projection["ProjectionType"]],
                non_key_attributes=projection.get("NonKeyAttributes"),
                **_keys(index["KeySchema"], types),  # type: ignore[arg-type]
            )
