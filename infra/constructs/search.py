"""The moments index: a managed OpenSearch domain or an OpenSearch Serverless vector collection,
per environment (``search.flavour``). Both are reached over HTTPS with SigV4 (IAM), so the
Lambdas and GPU workers need no VPC attachment and no NAT to reach them.

The Serverless data-access policy must list the reading/writing roles by ARN; those roles live
in the pipeline stack, so ``grant`` creates that policy in the caller's scope (the pipeline
stack depends on the data stack, never the reverse).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from infra.config import EnvironmentConfig, SearchFlavour
from infra.nag import acknowledge

ENGINE_VERSION = opensearch.EngineVersion.OPENSEARCH_2_19  # k-NN (faiss) + hybrid search pipelines
# Instance families without encryption at rest (the service refuses the option on them).
_NO_ENCRYPTION_AT_REST = ("t2.", "t3.small.")
_ES_HTTP_ACTIONS = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
_AOSS_INDEX_PERMISSIONS = [
    "aoss:CreateIndex",
    "aoss:DescribeIndex",
    "aoss:UpdateIndex",
    "aoss:ReadDocument",
    "aoss:WriteDocument",
]


class Search(Construct):
    """``url`` is ``OPENSEARCH_URL``; ``grant(scope, roles)`` lets roles read and write the index."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, name: str) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.flavour = config.search.flavour
        self.name = name  # domain and collection names: lowercase, <= 28 characters
        self._granted = 0
        self.domain: opensearch.Domain | None = None
        self.collection: aoss.CfnCollection | None = None
        if self.flavour is SearchFlavour.DOMAIN:
            self.domain = self._domain()
            self.url = f"https://{self.domain.domain_endpoint}"
        else:
            self.collection = self._collection()
            self.url = self.collection.attr_collection_endpoint

    # --- managed domain ----------------------------------------------------------------------------

    def _domain(self) -> opensearch.Domain:
        search = self.config.search
        stack = cdk.Stack.of(self)
        log_groups = {
            kind: logs.LogGroup(
                self,
                f"{kind}Logs",
                retention=self.config.log_retention,
                removal_policy=self.config.removal_policy,
            )
            for kind in ("SlowSearch", "SlowIndex", "App")
        }
        # Written here instead of by CDK's log-policy custom resource (a Lambda function).
        logs.ResourcePolicy(
            self,
            "LogDelivery",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:PutLogEvents", "logs:CreateLogStream"],
                    resources=[group.log_group_arn for group in log_groups.values()],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            ],
        )
        encrypt_at_rest = not search.instance_type.startswith(_NO_ENCRYPTION_AT_REST)
        multi_node = search.instance_count > 1
        domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=self.name,
            version=ENGINE_VERSION,
            capacity=opensearch.CapacityConfig(
                data_nodes=search.instance_count,
                data_node_instance_type=search.instance_type,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(volume_size=search.volume_gb, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=2)
            if multi_node
            else None,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=encrypt_at_rest),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["SlowSearch"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["SlowIndex"],
                app_log_enabled=True,
                app_log_group=log_groups["App"],
            ),
            suppress_logs_resource_policy=True,
            removal_policy=self.config.removal_policy,
        )
        domain.node.add_dependency(self.node.find_child("LogDelivery"))
        # Access: IAM principals of this account whose own policies allow es:ESHttp* (see grant).
        # Set on the resource directly: CDK's access_policies prop goes through a custom resource.
        cfn_domain = domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        domain_arn = stack.format_arn(service="es", resource="domain", resource_name=f"{self.name}/*")
        cfn_domain.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{stack.partition}:iam::{stack.account}:root"},
                    "Action": _ES_HTTP_ACTIONS,
                    "Resource": domain_arn,
                }
            ],
        }
        acknowledge(
            domain,
            "AwsSolutions-OS1",
            "Reached over HTTPS with SigV4 by Lambda functions that run outside any VPC; a VPC domain "
            "would need VPC-attached functions and NAT for every other AWS call.",
        )
        acknowledge(
            domain,
            "AwsSolutions-OS3",
            "Access is by IAM identity (resource policy limited to this account, SigV4), not by source IP: "
            "Lambda has no fixed addresses.",
        )
        acknowledge(
            domain,
            "AwsSolutions-OS4",
            "Small data-node counts (search.instanceCount) elect a master among themselves; dedicated "
            "masters would triple the cost of a dev index.",
        )
        if not multi_node:
            acknowledge(
                domain,
                "AwsSolutions-OS7",
                "Single-node domain by configuration (search.instanceCount=1): the index is rebuilt from "
                "the artifacts bucket by reprocessing, so an AZ outage costs availability, not data.",
            )
        if not encrypt_at_rest:
            acknowledge(
                domain,
                "AwsSolutions-OS8",
                f"{search.instance_type} does not support encryption at rest; choose t3.medium.search or "
                "larger in cdk.json for environments holding sensitive media.",
            )
        return domain

    # --- serverless collection ---------------------------------------------------------------------

    def _collection(self) -> aoss.CfnCollection:
        encryption = aoss.CfnSecurityPolicy(
            self,
            "Encryption",
            name=f"{self.name}-enc",
            type="encryption",
            policy=json.dumps(
                {
                    "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{self.name}"]}],
                    "AWSOwnedKey": True,
                }
            ),
        )
        network = aoss.CfnSecurityPolicy(
            self,
            "Network",
            name=f"{self.name}-net",
            type="network",
            # Public endpoint, IAM-authenticated: the callers are Lambda functions outside a VPC.
            policy=json.dumps(
                [
                    {
                        "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{self.name}"]}],
                        "AllowFromPublic": True,
                    }
                ]
            ),
        )
        collection = aoss.CfnCollection(
            self,
            "Collection",
            name=self.name,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if self.config.search.standby_replicas else "DISABLED",
        )
        collection.add_resource_dependency(encryption)
        collection.add_resource_dependency(network)
        collection.apply_removal_policy(self.config.removal_policy)
        return collection

    # --- access ------------------------------------------------------------------------------------

    def grant(self, scope: Construct, roles: Sequence[iam.IRole]) -> None:
        """Lets ``roles`` create, read and write the index; ``scope`` holds any policy resources."""
        if self.domain is not None:
            # Built from the name in the caller's stack: no cross-stack token in the policy.
            domain_arn = cdk.Stack.of(scope).format_arn(service="es", resource="domain", resource_name=self.name)
            for role in roles:
                role.add_to_principal_policy(
                    iam.PolicyStatement(actions=_ES_HTTP_ACTIONS, resources=[domain_arn, f"{domain_arn}/*"])
                )
            return
        assert self.collection is not None
        for role in roles:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.collection.attr_arn])
            )
        self._granted += 1
        policy = [
            {
                "Description": "medialens workers and API",
                "Rules": [
                    {
                        "ResourceType": "index",
                        "Resource": [f"index/{self.name}/*"],
                        "Permission": _AOSS_INDEX_PERMISSIONS,
                    },
                    {
                        "ResourceType": "collection",
                        "Resource": [f"collection/{self.name}"],
                        "Permission": ["aoss:DescribeCollectionItems"],
                    },
                ],
                "Principal": [role.role_arn for role in roles],
            }
        ]
        aoss.CfnAccessPolicy(
            scope,
            f"SearchAccess{self._granted}",
            name=f"{self.name}-access{self._granted}"[:32],
            type="data",
            policy=cdk.Stack.of(scope).to_json_string(policy),
        )
