"""The AWS registry: one DynamoDB table, single-table design.

Items: ``pk = asset_id``; ``sk = "asset"`` holds the asset (``body`` JSON, ``row_version``,
``status``, ``created_at``, ``source``); ``sk = "event#<time>#<n>"`` holds its audit trail. The
sparse GSIs ``by-status`` (``status`` / ``created_at``), ``by-source`` (``source``, the
object's s3:// URI / ``created_at``) and ``by-analysis`` (``analysis_key``, written only while
the asset is SUCCEEDED / ``created_at``) list assets by status, a key's revisions and the
analyses identical bytes can reuse, without a scan.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from medialens.adapters.registry.base import AssetRegistry
from medialens.domain.assets import Asset, AssetStatus, AuditEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ASSET_SK = "asset"
STATUS_INDEX = "by-status"
SOURCE_INDEX = "by-source"
ANALYSIS_INDEX = "by-analysis"


def table_definition(name: str) -> dict[str, Any]:
    """The CreateTable request; CDK declares the same keys and index."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "source", "AttributeType": "S"},
            {"AttributeName": "analysis_key", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": SOURCE_INDEX,
                "KeySchema": [
                    {"AttributeName": "source", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": ANALYSIS_INDEX,
                "KeySchema": [
                    {"AttributeName": "analysis_key", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def _item(asset: Asset) -> dict[str, Any]:
    item = {
        "pk": {"S": asset.asset_id},
        "sk": {"S": ASSET_SK},
        "status": {"S": asset.status.value},
        "created_at": {"S": asset.created_at.isoformat()},
        "source": {"S": asset.source.uri},
        "row_version": {"N": str(asset.row_version)},
        "body": {"S": asset.model_dump_json()},
    }
    if asset.analysis_key and asset.status is AssetStatus.SUCCEEDED:  # only finished analyses can be reused
        item["analysis_key"] = {"S": asset.analysis_key}
    return item


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _encode(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def _decode(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as error:
        raise ValueError("invalid cursor") from error
    if not isinstance(value, dict):
        raise ValueError("invalid cursor")
    return value


class DynamoAssetRegistry(AssetRegistry):
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self.db = dynamodb
        self.table = table

    def create_if_absent(self, asset: Asset) -> tuple[Asset, bool]:
        try:
            self.db.put_item(TableName=self.table, Item=_item(asset), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if not _conditional_failed(error):
                raise
            existing = self.get(asset.asset_id)
            assert existing is not None
            return existing, False
        return asset, True

    def get(self, asset_id: str) -> Asset | None:
        response = self.db.get_item(
            TableName=self.table, Key={"pk": {"S": asset_id}, "sk": {"S": ASSET_SK}}, ConsistentRead=True
        )
        item = response.get("Item")
        return Asset.model_validate_json(item["body"]["S"]) if item else None

    def _compare_and_set(self, asset: Asset, expected_version: int) -> bool:
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_item(asset),
                ConditionExpression="row_version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def list_assets(
        self, status: AssetStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Asset], str | None]:
        request: dict[str, Any] = {"TableName": self.table, "Limit": limit}
        start = _decode(cursor)
        if start:
            request["ExclusiveStartKey"] = start
        if status is not None:
            request |= {
                "IndexName": STATUS_INDEX,
                "KeyConditionExpression": "#s = :status",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":status": {"S": status.value}},
            }
            response = self.db.query(**request)
            items = response.get("Items", [])
        else:
            # A scan pages by items read, events included; keep reading until the page is full.
            request |= {
                "FilterExpression": "sk = :asset",
                "ExpressionAttributeValues": {":asset": {"S": ASSET_SK}},
            }
            # Limit counts items read (events too), so shrink it to what the page still needs:
            # never over-reading keeps LastEvaluatedKey an exact cursor.
            items = []
            while True:
                request["Limit"] = limit - len(items)
                response = self.db.scan(**request)
                items.extend(response.get("Items", []))
                if len(items) >= limit or "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        assets = [Asset.model_validate_json(item["body"]["S"]) for item in items]
        if status is None:
            assets.sort(key=lambda a: (a.created_at, a.asset_id))
        last = response.get("LastEvaluatedKey")
        return assets, _encode(last) if last else None

    def by_source(self, bucket: str, key: str) -> list[Asset]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": SOURCE_INDEX,
            "KeyConditionExpression": "#s = :source",
            "ExpressionAttributeNames": {"#s": "source"},
            "ExpressionAttributeValues": {":source": {"S": f"s3://{bucket}/{key}"}},
        }
        assets: list[Asset] = []
        while True:
            response = self.db.query(**request)
            assets.extend(Asset.model_validate_json(item["body"]["S"]) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return assets
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def analysed_as(self, analysis_key: str) -> list[Asset]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ANALYSIS_INDEX,
            "KeyConditionExpression": "analysis_key = :key",
            "ExpressionAttributeValues": {":key": {"S": analysis_key}},
            "ScanIndexForward": False,
        }
        assets: list[Asset] = []
        while True:
            response = self.db.query(**request)
            assets.extend(Asset.model_validate_json(item["body"]["S"]) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                # The index is eventually consistent: keep the ones that are still what it says.
                return [a for a in assets if a.status is AssetStatus.SUCCEEDED and a.analysis_key == analysis_key]
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete(self, asset_id: str) -> bool:
        existed = self.get(asset_id) is not None
        keys = [{"pk": {"S": asset_id}, "sk": {"S": ASSET_SK}}]
        keys += [self._event_key(item) for item in self._event_items(asset_id)]
        for start in range(0, len(keys), 25):
            self.db.batch_write_item(
                RequestItems={self.table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            )
        return existed

    def add_event(self, event: AuditEvent) -> None:
        self.db.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": event.asset_id},
                "sk": {"S": f"event#{event.at.isoformat()}#{uuid.uuid4().hex[:8]}"},
                "kind": {"S": event.kind},
                "detail": {"S": event.detail},
                "at": {"S": event.at.isoformat()},
            },
        )

    def events(self, asset_id: str) -> list[AuditEvent]:
        return [
            AuditEvent.model_validate(
                {"asset_id": asset_id, "kind": i["kind"]["S"], "detail": i["detail"]["S"], "at": i["at"]["S"]}
            )
            for i in self._event_items(asset_id)
        ]

    def _event_items(self, asset_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :event)",
            "ExpressionAttributeValues": {":pk": {"S": asset_id}, ":event": {"S": "event#"}},
        }
        while True:
            response = self.db.query(**request)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    @staticmethod
    def _event_key(item: dict[str, Any]) -> dict[str, Any]:
        return {"pk": item["pk"], "sk": item["sk"]}
