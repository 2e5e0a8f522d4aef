"""Alarms and a dashboard, notifying an SNS topic (KMS-encrypted, optional email subscription).

Alarms: dead letters per DLQ, age of the oldest message per work queue, failed / timed-out /
aborted executions, Lambda error rate per function, p95 latency (whole asset, each stage, API).

Every metric the library emits is defined once in ``medialens.insight.metrics.METRICS``; each
gets a dashboard widget here, and the report-level ones (published hourly by the insight
function) carry the drift and per-stage model-error alarms.

Per-stage latency is the library's EMF metric ``medialens/StageLatency`` (milliseconds, one
dimension ``stage``); until the library emits it those alarms stay in OK (missing data is not
breaching) and the dashboard row is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constructs.queues import Queues
from medialens.insight.metrics import METRICS, MetricSpec
from medialens.observability import NAMESPACE
from medialens.pipeline.catalog import CATALOG, WorkerClass

STAGE_LATENCY_METRIC = "StageLatency"
FIVE_MINUTES = cdk.Duration.minutes(5)
WIDGET_WIDTH = 8


class Observability(Construct):
    """Created first (workers send scaling errors to ``topic``); ``watch`` adds the rest."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"{config.prefix} alarm notifications",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # CloudWatch alarms publish to the encrypted topic as the CloudWatch service...
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        # ...and Auto Scaling (GPU host launch errors) as its service-linked role. Matched by a
        # condition, not named as principal: KMS rejects policies naming a role that does not
        # exist yet, and the role appears with the account's first Auto Scaling group.
        stack = cdk.Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "ArnEquals": {
                        "aws:PrincipalArn": f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
                        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
                    }
                },
            )
        )
        self.topic = sns.Topic(self, "Alarms", master_key=self.key, enforce_ssl=True)
        if config.alarms.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarms.email))
        self.action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=config.prefix)

    def _alarm(
        self, construct_id: str, *, metric: cw.IMetric, threshold: float, description: str, **kwargs: object
    ) -> cw.Alarm:
        props: dict[str, object] = {
            "evaluation_periods": 1,
            "comparison_operator": cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            "treat_missing_data": cw.TreatMissingData.NOT_BREACHING,
            **kwargs,
        }
        alarm = metric.create_alarm(  # type: ignore[attr-defined]
            self,
            construct_id,
            threshold=threshold,
            alarm_description=description,
            **props,
        )
        assert isinstance(alarm, cw.Alarm)
        alarm.add_alarm_action(self.action)
        alarm.add_ok_action(self.action)
        self.alarms.append(alarm)
        return alarm

    def watch(
        self,
        *,
        queues: Queues,
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.StateMachine,
        api: apigw.RestApi,
        gpu_metrics: Sequence[cw.IMetric] = (),
    ) -> None:
        alarms = self.config.alarms
        rows: list[list[cw.IWidget]] = []

        # --- queues ------------------------------------------------------------------------------
        depth_widgets: list[cw.IWidget] = []
        for name, work_queue in queues.by_name.items():
            title = name.capitalize()
            dead_letter = work_queue.dead_letter
            # The DLQ handler consumes dead letters within seconds, so depth alone would miss
            # them; every dead letter is received at least once, so count receives too.
            dead_letters = cw.MathExpression(
                expression="visible + received",
                using_metrics={
                    "visible": dead_letter.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=FIVE_MINUTES
                    ),
                    "received": dead_letter.metric_number_of_messages_received(statistic="Sum", period=FIVE_MINUTES),
                },
                label=f"{name} dead letters",
                period=FIVE_MINUTES,
            )
            self._alarm(
                f"{title}DeadLetters",
                metric=dead_letters,
                threshold=1,
                description=f"Messages reached the {name} dead-letter queue: a worker failed them "
                f"{queues.max_receive_count} times. They are archived under dead-letters/ in the artifacts bucket.",
            )
            oldest = work_queue.queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=FIVE_MINUTES)
            limit = alarms.oldest_message_age_s[name]
            self._alarm(
                f"{title}OldestMessage",
                metric=oldest,
                threshold=limit,
                description=f"The oldest {name} message waited over {limit}s: workers are down or saturated.",
            )
            depth_widgets.append(
                cw.GraphWidget(
                    title=f"{name} queue",
                    left=[
                        work_queue.queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES),
                        work_queue.queue.metric_approximate_number_of_messages_not_visible(period=FIVE_MINUTES),
                        dead_letters,
                    ],
                    right=[oldest],
                    width=WIDGET_WIDTH,
                )
            )
        rows.append(depth_widgets)

        # --- executions --------------------------------------------------------------------------
        failed = state_machine.metric_failed(statistic="Sum", period=FIVE_MINUTES)
        started = state_machine.metric_started(statistic="Sum", period=FIVE_MINUTES)
        broken = cw.MathExpression(
            expression="timedout + aborted",
            using_metrics={
                "timedout": state_machine.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
                "aborted": state_machine.metric_aborted(statistic="Sum", period=FIVE_MINUTES),
            },
            label="timed out + aborted",
            period=FIVE_MINUTES,
        )
        self._alarm(
            "ExecutionsTimedOutOrAborted",
            metric=broken,
            threshold=1,
            description="An execution timed out or was aborted: its asset may not have reached a terminal status.",
        )
        failed_percent = cw.MathExpression(
            expression="IF(started > 0, 100 * failed / started, 0)",
            using_metrics={"failed": failed, "started": started},
            label="failed %",
            period=cdk.Duration.hours(1),
        )
        self._alarm(
            "ExecutionsFailed",
            metric=failed_percent,
            threshold=alarms.failed_execution_percent,
            description="Over the last hour this share of executions ended FAILED. Bad uploads fail by design; "
            "a rise means a step is broken (see status by error code).",
        )
        execution_p95 = state_machine.metric_time(statistic="p95", period=FIVE_MINUTES)
        self._alarm(
            "ExecutionTimeP95",
            metric=execution_p95,
            threshold=alarms.execution_p95_s * 1000,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"p95 of whole-asset analysis time is over {alarms.execution_p95_s}s.",
        )
        rows.append(
            [
                cw.GraphWidget(
                    title="executions",
                    left=[
                        started,
                        state_machine.metric_succeeded(statistic="Sum", period=FIVE_MINUTES),
                        failed,
                        broken,
                    ],
                    width=WIDGET_WIDTH,
                ),
                cw.GraphWidget(
                    title="execution time",
                    left=[state_machine.metric_time(statistic="p50", period=FIVE_MINUTES), execution_p95],
                    width=WIDGET_WIDTH,
                ),
                cw.GraphWidget(title="GPU workers", left=list(gpu_metrics), width=WIDGET_WIDTH),
            ]
        )

        # --- stages ------------------------------------------------------------------------------
        stage_metrics: list[cw.IMetric] = []
        for step in (spec.name for spec in CATALOG.values() if not spec.bookkeeping):
            metric = cw.Metric(
                namespace=NAMESPACE,
                metric_name=STAGE_LATENCY_METRIC,
                dimensions_map={"stage": step.value},
                statistic="p95",
                period=FIVE_MINUTES,
                label=f"{step.value} p95",
            )
            stage_metrics.append(metric)
            self._alarm(
                f"StageP95{''.join(part.capitalize() for part in step.value.split('_'))}",
                metric=metric,
                threshold=alarms.stage_p95_ms,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"p95 latency of stage {step.value} is over {alarms.stage_p95_ms} ms.",
            )

        # --- functions ---------------------------------------------------------------------------
        function_widgets: list[cw.IWidget] = []
        for name, function in functions.items():
            errors = function.metric_errors(statistic="Sum", period=FIVE_MINUTES)
            invocations = function.metric_invocations(statistic="Sum", period=FIVE_MINUTES)
            error_rate = cw.MathExpression(
                expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                using_metrics={"errors": errors, "invocations": invocations},
                label=f"{name} error %",
                period=FIVE_MINUTES,
            )
            self._alarm(
                f"{name.capitalize()}ErrorRate",
                metric=error_rate,
                threshold=alarms.lambda_error_rate_percent,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"More than {alarms.lambda_error_rate_percent}% of {name} invocations failed.",
            )
            function_widgets.append(
                cw.GraphWidget(
                    title=f"{name} function",
                    left=[invocations, errors, function.metric_throttles(statistic="Sum", period=FIVE_MINUTES)],
                    right=[function.metric_duration(statistic="p95", period=FIVE_MINUTES)],
                    width=WIDGET_WIDTH,
                )
            )
        rows.append([cw.GraphWidget(title="stage latency p95 (ms)", left=stage_metrics, width=WIDGET_WIDTH)])
        rows[-1].extend(function_widgets[:2])
        rows.append(function_widgets[2:])

        # --- API ---------------------------------------------------------------------------------
        api_p95 = api.metric_latency(statistic="p95", period=FIVE_MINUTES)
        self._alarm(
            "ApiLatencyP95",
            metric=api_p95,
            threshold=alarms.api_p95_ms,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"p95 API latency is over {alarms.api_p95_ms} ms.",
        )
        server_errors = api.metric_server_error(statistic="Sum", period=FIVE_MINUTES)
        self._alarm(
            "ApiServerErrors",
            metric=server_errors,
            threshold=5,
            description="The search API answered 5xx at least 5 times in five minutes.",
        )
        rows[-1].append(
            cw.GraphWidget(
                title="search API",
                left=[
                    api.metric_count(statistic="Sum", period=FIVE_MINUTES),
                    api.metric_client_error(statistic="Sum", period=FIVE_MINUTES),
                    server_errors,
                ],
                right=[api_p95],
                width=WIDGET_WIDTH,
            )
        )
        # --- the metrics catalogue: model quality, drift, cost and every count the code emits ---------
        catalogue_widgets: list[cw.IWidget] = []
        for spec in METRICS:
            if spec.name == STAGE_LATENCY_METRIC:
                continue  # drawn above, per stage
            catalogue_widgets.append(
                cw.GraphWidget(title=spec.name.split("_{")[0], left=_catalogue_metrics(spec), width=WIDGET_WIDTH)
            )
        self._alarm(
            "DriftAlarms",
            metric=_catalogue_metric("DriftAlarms", "Maximum", None, cdk.Duration.hours(1)),
            threshold=1,
            description="A model-quality signal, the language or media-type mix or the embedding centroid drifted "
            "from its reference window (medialens report shows which, with the histograms).",
        )
        for stage in (spec.name.value for spec in CATALOG.values() if spec.worker is WorkerClass.HEAVY):
            self._alarm(
                f"ModelErrorRate{''.join(part.capitalize() for part in stage.split('_'))}",
                metric=_catalogue_metric("ModelErrorRate", "Maximum", ("stage", stage), cdk.Duration.hours(1)),
                threshold=alarms.model_error_rate_percent,
                description=f"Over the last day {alarms.model_error_rate_percent}% or more of {stage} calls failed.",
            )
        for start in range(0, len(catalogue_widgets), 3):
            rows.append(catalogue_widgets[start : start + 3])

        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="alarms", alarms=list(self.alarms), width=3 * WIDGET_WIDTH, height=4)
        )
        for row in rows:
            self.dashboard.add_widgets(*row)


def _catalogue_metric(
    name: str, statistic: str, dimension: tuple[str, str] | None, period: cdk.Duration = FIVE_MINUTES
) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=dict([dimension]) if dimension else None,
        statistic=statistic,
        period=period,
        label=dimension[1] if dimension else name,
    )


def _catalogue_metrics(spec: MetricSpec) -> list[cw.IMetric]:
    """One line per family member or dimension value (CloudWatch graphs at most 100 per widget);
    a dimension with open values (routes, GPU devices) is found by a search expression."""
    if spec.search_dimension:
        query = f'{{{NAMESPACE},{spec.search_dimension}}} MetricName="{spec.name}"'
        search = f"SEARCH('{query}', '{spec.statistic}', 300)"
        return [cw.MathExpression(expression=search, label=spec.name, period=FIVE_MINUTES)]
    if spec.dimension:
        return [_catalogue_metric(spec.name, spec.statistic, (spec.dimension, value)) for value in spec.values]
    return [_catalogue_metric(name, spec.statistic, None) for name in spec.names()]
