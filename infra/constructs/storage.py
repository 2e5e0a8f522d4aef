"""Buckets: the drop bucket (uploads land here and announce themselves on EventBridge), the
artifacts bucket (derived files, dead-letter archive, the model store) and the access-log bucket
both of them log into."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.nag import acknowledge
from infra.naming import DataNames

DEAD_LETTER_PREFIX = "dead-letters/"  # medialens.handlers.dlq archives here
MODEL_STORE_PREFIX = "models/"  # medialens.ml.store mirrors <name>/<version>/<quantization>/ under it


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, names: DataNames) -> None:
        super().__init__(scope, construct_id)
        removal = config.removal_policy
        lifecycle = config.storage

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access log delivery does not support SSE-KMS targets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=removal,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(lifecycle.access_log_expiration_days))],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target bucket; logging it into itself would log every log delivery.",
        )

        abort_uploads = cdk.Duration.days(lifecycle.incomplete_upload_abort_days)
        self.drop = s3.Bucket(
            self,
            "Drop",
            bucket_name=names.drop_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            # A re-upload under the same key is a new version, so a new asset (asset ids include
            # the version id) and the previous revision stays until it expires.
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="drop/",
            removal_policy=removal,
            # The page's uploads: presigned POSTs and part PUTs from these origins; the ETag of each
            # part must be readable to complete a multipart upload.
            cors=[
                s3.CorsRule(
                    allowed_origins=list(config.api.upload_origins),
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.PUT],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3600,
                )
            ]
            if config.api.upload_origins
            else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tier-and-expire",
                    abort_incomplete_multipart_upload_after=abort_uploads,
                    noncurrent_version_expiration=cdk.Duration.days(lifecycle.drop_noncurrent_expiration_days),
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=cdk.Duration.days(lifecycle.drop_transition_days),
                        )
                    ],
                )
            ],
        )
        # "Object Created" events to EventBridge. Set on the bucket resource itself: CDK's
        # event_bridge_enabled goes through a notifications custom resource (a Lambda function
        # with broad S3 rights) that this needs no more than CloudFormation's native property.
        drop_resource = self.drop.node.default_child
        assert isinstance(drop_resource, s3.CfnBucket)
        drop_resource.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        self.artifacts = s3.Bucket(
            self,
            "Artifacts",
            bucket_name=names.artifacts_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            # Steps overwrite their outputs idempotently: versions would only accumulate cost.
            versioned=False,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=abort_uploads),
                s3.LifecycleRule(
                    id="expire-dead-letter-archive",
                    prefix=DEAD_LETTER_PREFIX,
                    expiration=cdk.Duration.days(lifecycle.dead_letter_archive_expiration_days),
                ),
            ],
        )


def model_store_uri(artifacts_bucket: str) -> str:
    """``MEDIALENS_MODEL_STORE_URI``: the S3 root the model store pulls from."""
    return f"s3://{artifacts_bucket}/{MODEL_STORE_PREFIX}"
