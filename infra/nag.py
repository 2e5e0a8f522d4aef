"""cdk-nag (AwsSolutions) wiring and acknowledgments.

Every acknowledgment carries a reason a reviewer can check. The checks run on every synth
(``cdk synth`` fails on an unacknowledged finding) and the infra tests assert zero
unacknowledged findings per environment.

Wildcard IAM findings (AwsSolutions-IAM5) come one per action pattern and per resource, and
cdk-nag 3 matches their ids exactly, so they are acknowledged by ``ReviewedWildcards``: an aspect
that reads each synthesized policy the way the rule does and acknowledges only findings matching
a reviewed pattern below, each with its reason. A new kind of wildcard fails synth until someone
reviews it and adds a pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

IAM5 = "AwsSolutions-IAM5"
# Managed policies CDK attaches that the checks flag (AwsSolutions-IAM4), by finding id.
LAMBDA_BASIC_EXECUTION = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def add_checks(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    cdk.Aspects.of(app).add(ReviewedWildcards())


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledges ``rule`` on ``scope`` and everything under it; with ``findings``, only those
    (``AwsSolutions-IAM5[Resource::*]``): cdk-nag 3 matches finding ids exactly."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    cdk.Validations.of(scope).acknowledge(*(cdk.Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


@dataclass(frozen=True)
class Reviewed:
    pattern: str  # full match against the finding, e.g. "Action::s3:GetObject*"
    reason: str


# Partition, region and account appear as pseudo parameters or, where the stack's environment
# is known at synth, as values.
_P = r"(<AWS::Partition>|aws|aws-cn|aws-us-gov)"
_R = r"(<AWS::Region>|[a-z]{2}(-[a-z]+)+-[0-9])"
_A = r"(<AWS::AccountId>|[0-9]{12})"
_BUCKET = rf"arn:{_P}:s3:::medialens-[a-z0-9]+-(drop|artifacts)-{_A}-{_R}"
REVIEWED: tuple[Reviewed, ...] = (
    Reviewed(
        r"Action::s3:(GetObject|GetBucket|List|DeleteObject|Abort)\*",
        "CDK bucket grants (grant_read / grant_read_write / grant_delete): the wildcard spans one action "
        "family's variants (versions, tagging, ACL reads), and the statement names this app's buckets only.",
    ),
    Reviewed(
        rf"Resource::{_BUCKET}/\*",
        "Object-level S3 actions need the bucket's objects: keys are per asset (derived/<asset_id>/...), "
        "so no narrower fixed prefix exists; one bucket of this app only.",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:s3:::medialens-[a-z0-9]+-artifacts-{_A}-{_R}/(async-inference(/input)?|models|dead-letters)/\*",
        "One prefix of this app's artifacts bucket (async-inference/input: the forwarder's requests).",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:s3:::medialens-[a-z0-9]+-drop-{_A}-{_R}/incoming/uploads/\*",
        "The page's uploads folder of this app's drop bucket: presigned upload POSTs and part PUTs act with "
        "this right; each file's key is its own name, so no narrower fixed prefix exists.",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:dynamodb:{_R}:{_A}:table/medialens-[a-z0-9-]+/index/\*",
        "Queries on the registry table's own secondary indexes (by-status).",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:es:{_R}:{_A}:domain/medialens-[a-z0-9-]+/\*",
        "HTTP actions on this app's OpenSearch domain: index names live under the domain ARN.",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:execute-api:{_R}:{_A}:<[A-Za-z0-9]+>/v1/\*/\*",
        "Invoking every method and path of this one API stage: the API is the unit of access.",
    ),
    Reviewed(
        rf"Resource::arn:{_P}:logs:{_R}:{_A}:log-group:/aws/sagemaker/\*",
        "SageMaker endpoints log to /aws/sagemaker/Endpoints/<name>, created by the service.",
    ),
    Reviewed(
        r"Action::ecs:Submit\*",
        "CDK's ECS container-instance policy: the agent reports task and container state (Submit*) "
        "for this cluster's instances.",
    ),
)

# Actions that have no resource-level permissions, so their statements must name "*".
RESOURCE_WILDCARD_ACTIONS = {
    "xray:PutTraceSegments": "X-Ray tracing (Lambda, Step Functions)",
    "xray:PutTelemetryRecords": "X-Ray tracing",
    "xray:GetSamplingRules": "X-Ray sampling",
    "xray:GetSamplingTargets": "X-Ray sampling",
    "logs:CreateLogDelivery": "Step Functions log delivery",
    "logs:GetLogDelivery": "Step Functions log delivery",
    "logs:UpdateLogDelivery": "Step Functions log delivery",
    "logs:DeleteLogDelivery": "Step Functions log delivery",
    "logs:ListLogDeliveries": "Step Functions log delivery",
    "logs:PutResourcePolicy": "Step Functions log delivery",
    "logs:DescribeResourcePolicies": "Step Functions log delivery",
    "logs:DescribeLogGroups": "Step Functions log delivery",
    "ecr:GetAuthorizationToken": "pulling the worker image (registry login)",
    "ec2:DescribeTags": "the ECS agent on the GPU hosts",
    "ecs:DiscoverPollEndpoint": "the ECS agent on the GPU hosts",
    "ecs:Poll": "the ECS agent on the GPU hosts (limited to this cluster by an ecs:cluster condition)",
    "ecs:StartTelemetrySession": "the ECS agent on the GPU hosts (limited to this cluster by an ecs:cluster condition)",
    "logs:CreateLogStream": "the ECS agent's own logging in CDK's container-instance policy",
    "logs:PutLogEvents": "the ECS agent's own logging in CDK's container-instance policy",
    "cloudwatch:PutMetricData": "metrics (restricted by a namespace condition)",
}


def flatten_reference(node: Any) -> str:
    """cdk-nag's ``flattenCfnReference``: how a policy's Resource becomes a finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(finding id, statement) for each wildcard the IAM5 rule reports."""
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if "*" in action:
                yield f"Action::{action}", statement
        for resource in _as_list(statement.get("Resource", [])):
            flat = flatten_reference(resource)
            if "*" in flat:
                yield f"Resource::{flat}", statement


def review(document: dict[str, Any]) -> dict[str, str]:
    """Finding id -> reason for the findings that match a reviewed pattern."""
    reviewed: dict[str, str] = {}
    resource_star: list[dict[str, Any]] = []
    for finding, statement in wildcard_findings(document):
        if finding == "Resource::*":
            resource_star.append(statement)
            continue
        for rule in REVIEWED:
            if re.fullmatch(rule.pattern, finding):
                reviewed[finding] = rule.reason
                break
    actions = {a for s in resource_star for a in _as_list(s.get("Action", []))}
    if resource_star and actions <= RESOURCE_WILDCARD_ACTIONS.keys():
        uses = sorted({RESOURCE_WILDCARD_ACTIONS[a] for a in actions})
        reviewed["Resource::*"] = (
            f"Actions without resource-level permissions ({', '.join(sorted(actions))}): {'; '.join(uses)}."
        )
    return reviewed


@jsii.implements(cdk.IAspect)
class ReviewedWildcards:
    """Acknowledges the reviewed IAM5 findings of every policy in the app (see module docstring)."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy | iam.CfnManagedPolicy):
            return
        document = cdk.Stack.of(node).resolve(node.policy_document)
        for finding, reason in review(document).items():
            cdk.Validations.of(node).acknowledge(cdk.Acknowledgment(id=f"{IAM5}[{finding}]", reason=reason))
