"""Heavy workers: the ``containers/inference`` image as an ECS service on GPU EC2 capacity,
scaled on the heavy queue's backlog, from zero.

Why ECS and not AWS Batch: the worker (``medialens.worker.heavy``) is a long-running poller that
batches *across* messages and assets, heartbeats long tasks and drains on SIGTERM. A service
keeps a loaded model serving a whole burst and stops when the queue has been empty for a while;
Batch would need a job submitter watching the same queue, and every job would pay the image
pull and model load again. Capacity: an Auto Scaling group of GPU instances (ECS GPU AMI) behind
an ECS capacity provider with managed scaling, so instances follow tasks, down to zero.

The SageMaker async endpoint (``gpu.sagemakerAsync``) serves the same image's ``serve`` entry
(``/ping``, ``/invocations``) instead, fed by a forwarder Lambda; see ``SageMakerAsyncEndpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constructs.functions import SharedResources
from infra.images import container_image
from infra.nag import acknowledge

CONTAINER_STOP_TIMEOUT_S = 120  # the worker finishes its batch after SIGTERM, then exits
ONE_MINUTE = cdk.Duration.minutes(1)


class HeavyWorkers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        shared: SharedResources,
        environment: Mapping[str, str],
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        gpu = config.gpu
        network = config.network
        private = network.nat_gateways > 0
        subnets = [ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)]
        if private:
            subnets.append(
                ec2.SubnetConfiguration(name="workers", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22)
            )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=network.max_azs,
            nat_gateways=network.nat_gateways,
            subnet_configuration=subnets,
            # Nothing uses the default security group; stripping its rules needs a custom resource.
            restrict_default_security_group=False,
            # Free gateway endpoints: S3 and DynamoDB traffic skips the NAT (or the internet).
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            flow_logs={
                "Rejected": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        placement = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if private else ec2.SubnetType.PUBLIC
        )

        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        security_group = ec2.SecurityGroup(
            self,
            "HostSecurityGroup",
            vpc=self.vpc,
            description="GPU worker hosts: no inbound traffic; outbound to AWS APIs and the image registry",
            allow_all_outbound=True,
        )
        host_role = iam.Role(self, "HostRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
        launch_template = ec2.LaunchTemplate(
            self,
            "HostTemplate",
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),
            role=host_role,
            security_group=security_group,
            user_data=ec2.UserData.for_linux(),  # the cluster adds its ECS agent configuration
            require_imdsv2=True,
            associate_public_ip_address=None if private else True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        gpu.root_volume_gb, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        self.hosts = autoscaling.AutoScalingGroup(
            self,
            "Hosts",
            vpc=self.vpc,
            vpc_subnets=placement,
            min_capacity=0,
            max_capacity=gpu.max_instances,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t)) for t in gpu.instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=0,
                    on_demand_percentage_above_base_capacity=0 if gpu.spot else 100,
                    on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                    # Spot interruptions only delay work: unanswered messages reappear on the queue.
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                ),
            ),
            # Launch failures (no GPU capacity in any AZ, quota) reach the alarm topic.
            notifications=[
                autoscaling.NotificationConfiguration(
                    topic=alarm_topic, scaling_events=autoscaling.ScalingEvents.ERRORS
                )
            ],
        )
        capacity = ecs.AsgCapacityProvider(
            self,
            "Capacity",
            auto_scaling_group=self.hosts,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,  # never scale in a host with a running task
            target_capacity_percent=100,
        )
        self.cluster.add_asg_capacity_provider(capacity)

        self.image = container_image(self, "Image", "inference")
        self.task_definition = ecs.Ec2TaskDefinition(self, "Task")
        logs_group = logs.LogGroup(
            self,
            "WorkerLogs",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.task_definition.add_container(
            "worker",
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            gpu_count=1,
            memory_reservation_mib=gpu.task_memory_mib,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": "medialens-heavy"},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="heavy", log_group=logs_group),
            stop_timeout=cdk.Duration.seconds(CONTAINER_STOP_TIMEOUT_S),
        )
        task_role = self.task_definition.task_role
        shared.queues.heavy.queue.grant_consume_messages(task_role)
        shared.state_machine.grant_task_response(task_role)
        shared.drop.grant_read(task_role)
        shared.artifacts.grant_read_write(task_role)
        shared.assets.grant_read_write_data(task_role)
        shared.search.grant(self, [task_role])

        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=0,
            min_healthy_percent=0,  # scale-to-zero service: nothing to keep up during deploys
            max_healthy_percent=100,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider=capacity.capacity_provider_name, weight=1)
            ],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            placement_strategies=[ecs.PlacementStrategy.packed_by_memory()],
        )
        self.backlog = cw.MathExpression(
            expression="visible + inflight",
            using_metrics={
                "visible": shared.queues.heavy.queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=ONE_MINUTE
                ),
                "inflight": shared.queues.heavy.queue.metric_approximate_number_of_messages_not_visible(
                    statistic="Maximum", period=ONE_MINUTE
                ),
            },
            label="heavy backlog",
            period=ONE_MINUTE,
        )
        if not gpu.sagemaker_async:  # else the endpoint serves the heavy queue, and this service stays at zero
            self._scale_on_backlog(config)
        self.metrics: list[cw.IMetric] = [
            self.backlog,
            cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions_map={"ClusterName": self.cluster.cluster_name, "ServiceName": self.service.service_name},
                statistic="Maximum",
                period=ONE_MINUTE,
                label="running workers",
            ),
        ]
        self._acknowledge(environment_names=sorted(environment))
        self.endpoint = (
            SageMakerAsyncEndpoint(
                self, "Async", config=config, image=self.image, shared=shared, environment=environment
            )
            if gpu.sagemaker_async
            else None
        )

    def _scale_on_backlog(self, config: EnvironmentConfig) -> None:
        """Tasks = ceil(backlog / messagesPerTask), up to maxTasks; zero after an idle spell.

        Two alarms instead of one step policy: scale-out reacts within a minute, scale-in waits
        ``scaleInAfterMinutes`` of an empty queue (messages in flight count as backlog), so a
        steady trickle does not start and stop GPU hosts."""
        gpu = config.gpu
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=f"service/{self.cluster.cluster_name}/{self.service.service_name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=0,
            max_capacity=gpu.max_tasks,
        )
        target.node.add_dependency(self.service)
        scale_out = appscaling.StepScalingAction(
            self,
            "ScaleOut",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=ONE_MINUTE,
        )
        # Bounds are relative to the alarm threshold (0.5): backlog b maps to ceil(b / per_task).
        per_task = gpu.messages_per_task
        for tasks in range(1, gpu.max_tasks + 1):
            scale_out.add_adjustment(
                adjustment=tasks,
                lower_bound=0 if tasks == 1 else (tasks - 1) * per_task,
                upper_bound=tasks * per_task if tasks < gpu.max_tasks else None,
            )
        out_alarm = self.backlog.create_alarm(
            self,
            "BacklogAlarm",
            threshold=0.5,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="Heavy queue has work: run ceil(backlog / messagesPerTask) GPU workers.",
        )
        out_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_out))
        scale_in = appscaling.StepScalingAction(
            self,
            "ScaleIn",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        scale_in.add_adjustment(adjustment=0, upper_bound=0)
        in_alarm = self.backlog.create_alarm(
            self,
            "IdleAlarm",
            threshold=0.5,
            evaluation_periods=gpu.scale_in_after_minutes,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            # SQS stops publishing metrics for a queue idle for hours: no data means no backlog.
            treat_missing_data=cw.TreatMissingData.BREACHING,
            alarm_description="Heavy queue empty and nothing in flight: stop the GPU workers.",
        )
        in_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_in))

    def _acknowledge(self, environment_names: list[str]) -> None:
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The container's environment holds only resource names, URLs and ARNs "
            f"({', '.join(environment_names)}); there are no secrets to move to Secrets Manager.",
        )
        acknowledge(
            self.hosts,
            "AwsSolutions-AS3",
            "Launch errors (no GPU capacity, quotas) notify the alarm topic; routine launches and "
            "terminations follow the queue backlog and would only be noise there (see the dashboard).",
        )
        acknowledge(
            self.hosts,
            "AwsSolutions-EC26",
            "The launch template's root volume is encrypted (BlockDeviceVolume.ebs(encrypted=True)); the rule "
            "does not read launch templates.",
        )


class SageMakerAsyncEndpoint(Construct):
    """The alternative to the ECS service: the same image behind a SageMaker asynchronous
    endpoint, scaled to zero on its backlog. The forwarder Lambda (``Functions.forward_heavy_steps``)
    turns each batch of the heavy queue into one InvokeEndpointAsync request; SageMaker calls
    ``/invocations`` with ``{"messages": [...]}`` and the container answers the task tokens itself.
    With it on, the ECS service is kept but not scaled: it stays at zero tasks."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        image: ecr_assets.DockerImageAsset,
        shared: SharedResources,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        image.repository.grant_pull(role)
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints", "medialens"]}},
            )
        )
        shared.artifacts.grant_read_write(role)
        shared.drop.grant_read(role)
        shared.assets.grant_read_write_data(role)
        shared.state_machine.grant_task_response(role)
        shared.search.grant(self, [role])
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image.image_uri, environment={**environment, "POWERTOOLS_SERVICE_NAME": "medialens-serve"}
            ),
        )
        model.node.add_dependency(role)
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name="AllTraffic",
                    model_name=model.attr_model_name,
                    instance_type=config.gpu.sagemaker_instance_type,
                    initial_instance_count=1,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"s3://{shared.artifacts.bucket_name}/async-inference/output/",
                    s3_failure_path=f"s3://{shared.artifacts.bucket_name}/async-inference/failures/",
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=4
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_config_name=endpoint_config.attr_endpoint_config_name
        )
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint.attr_endpoint_name}/variant/AllTraffic",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=0,
            max_capacity=config.gpu.max_instances,
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=5,
            custom_metric=cw.Metric(
                namespace="AWS/SageMaker",
                metric_name="ApproximateBacklogSizePerInstance",
                dimensions_map={"EndpointName": self.endpoint.attr_endpoint_name},
                statistic="Average",
            ),
            scale_in_cooldown=cdk.Duration.minutes(config.gpu.scale_in_after_minutes),
            scale_out_cooldown=ONE_MINUTE,
        )
        # Target tracking never leaves zero instances: wake the endpoint when work waits for it.
        wake = appscaling.StepScalingAction(
            self,
            "WakeUp",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cdk.Duration.minutes(5),
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        cw.Metric(
            namespace="AWS/SageMaker",
            metric_name="HasBacklogWithoutCapacity",
            dimensions_map={"EndpointName": self.endpoint.attr_endpoint_name},
            statistic="Average",
            period=ONE_MINUTE,
        ).create_alarm(
            self,
            "BacklogWithoutCapacity",
            threshold=1,
            evaluation_periods=2,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        ).add_alarm_action(cw_actions.ApplicationScalingAction(wake))
        acknowledge(
            self,
            "AwsSolutions-SM1",
            "The endpoint reaches S3, DynamoDB, SQS, Step Functions and the index over their public AWS "
            "endpoints with IAM; a VPC would need NAT or six interface endpoints for no added control.",
        )
        acknowledge(
            self,
            "AwsSolutions-SM2",
            "The endpoint keeps no data of its own on its volume beyond the baked model weights; "
            "results go to the SSE-S3 encrypted artifacts bucket.",
        )
        acknowledge(
            self,
            "AwsSolutions-SM3",
            "Network isolation would cut the container off from SQS, Step Functions and S3, which it "
            "calls to answer its tasks.",
        )
