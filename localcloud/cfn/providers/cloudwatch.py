"""``AWS::CloudWatch::Alarm`` and ``AWS::CloudWatch::Dashboard``.

An alarm is stored in the endpoint's CloudWatch (so ``describe_alarms`` sees it) and
handed to the local alarm evaluator as an ``AlarmSpec``, which evaluates it against the
metrics the local cloud publishes: a single metric, or metric math (``Metrics`` with
expressions over ``MetricStat`` queries; the subset :mod:`localcloud.metric_math`
implements, checked here before anything is created).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from localcloud import metric_math
from localcloud.cfn.providers.base import (
    Clients,
    Created,
    DeployedResource,
    Provider,
    ProviderContext,
    ValidationContext,
    as_bool,
    require,
    tag_list,
)
from localcloud.cfn.providers.errors import ignore_missing
from localcloud.specs import AlarmSpec, MetricDimension, MetricQuery

_MAX_ALARM_NAME: Final = 255
_MAX_DASHBOARD_NAME: Final = 255
_PASS_THROUGH: Final = (
    "AlarmDescription",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def _single_metric(properties: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{Namespace, MetricName, Dimensions, Period, Stat}`` of a one-metric ``Metrics`` alarm."""
    metrics = properties.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) != 1:
        return None
    (query,) = metrics
    stat = query.get("MetricStat") if isinstance(query, dict) else None
    if not isinstance(stat, dict) or not isinstance(stat.get("Metric"), dict):
        return None
    metric = stat["Metric"]
    return {
        "Namespace": metric.get("Namespace"),
        "MetricName": metric.get("MetricName"),
        "Dimensions": metric.get("Dimensions") or [],
        "Period": stat.get("Period"),
        "Statistic": stat.get("Stat"),
    }


def _dimensions(raw: Any) -> tuple[MetricDimension, ...]:
    return tuple(MetricDimension(name=str(d["Name"]), value=str(d["Value"])) for d in raw or ())


def _math_queries(properties: Mapping[str, Any]) -> tuple[MetricQuery, ...]:
    """The ``Metrics`` of a metric-math alarm as queries (empty for a single-metric one)."""
    metrics = properties.get("Metrics")
    if not isinstance(metrics, list) or _single_metric(properties) is not None:
        return ()
    queries = []
    for entry in metrics:
        stat = entry.get("MetricStat") or {}
        metric = stat.get("Metric") or {}
        queries.append(
            MetricQuery(
                id=str(entry["Id"]),
                expression=None if entry.get("Expression") is None else str(entry["Expression"]),
                namespace=str(metric.get("Namespace", "")),
                metric_name=str(metric.get("MetricName", "")),
                dimensions=_dimensions(metric.get("Dimensions")),
                statistic=str(stat.get("Stat", "")),
                period_s=int(stat.get("Period") or 0),
                return_data=bool(as_bool(entry.get("ReturnData", True))),
            )
        )
    return tuple(queries)


class AlarmProvider(Provider):
    """A single-metric or metric-math alarm."""

    resource_type = "AWS::CloudWatch::Alarm"
    attributes = frozenset({"Arn"})

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        if "ThresholdMetricId" in properties:
            raise ctx.error(
                "anomaly-detection alarms (ThresholdMetricId) are not supported by the local "
                "alarm evaluator"
            )
        queries = _math_queries(properties)
        if "MetricName" not in properties and _single_metric(properties) is None and not queries:
            raise ctx.error("the alarm names neither a metric nor Metrics")
        if any(q.expression is None and not q.metric_name for q in queries):
            raise ctx.error("each entry of Metrics needs an Expression or a MetricStat")
        ids = {q.id for q in queries}
        for query in queries:
            if query.expression is not None:
                try:
                    unknown = metric_math.ids_used(query.expression) - ids
                except metric_math.UnsupportedExpressionError as error:
                    raise ctx.error(str(error), path="Properties.Metrics") from None
                if unknown:
                    raise ctx.error(
                        f"metric math {query.expression!r} refers to unknown ids {sorted(unknown)}",
                        path="Properties.Metrics",
                    )
        if queries and sum(q.return_data for q in queries) != 1:
            raise ctx.error("exactly one entry of Metrics must have ReturnData true")

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = str(properties.get("AlarmName") or ctx.generate_name(_MAX_ALARM_NAME))
        request: dict[str, Any] = {
            "AlarmName": name,
            "ActionsEnabled": as_bool(properties.get("ActionsEnabled", True)),
        }
        request.update({key: properties[key] for key in _PASS_THROUGH if key in properties})
        tags = ctx.tags(properties.get("Tags"))
        if tags:
            request["Tags"] = tag_list(tags)
        queries = _math_queries(properties)
        metric = _single_metric(properties) or ({} if queries else properties)
        evaluation_periods = int(require(ctx, properties, "EvaluationPeriods"))
        spec = AlarmSpec(
            alarm_name=name,
            namespace=str(metric.get("Namespace") or ""),
            metric_name=str(metric.get("MetricName") or ""),
            dimensions=_dimensions(metric.get("Dimensions")),
            statistic=str(metric.get("Statistic") or properties.get("ExtendedStatistic") or ""),
            period_s=int(
                metric.get("Period")
                or next((q.period_s for q in queries if q.expression is None), 60)
            ),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(properties.get("DatapointsToAlarm", evaluation_periods)),
            threshold=float(require(ctx, properties, "Threshold")),
            comparison_operator=str(require(ctx, properties, "ComparisonOperator")),
            treat_missing_data=str(properties.get("TreatMissingData", "missing")),
            actions_enabled=request["ActionsEnabled"],
            metrics=queries,
        )
        if not spec.statistic and not queries:
            raise ctx.error("the alarm names neither Statistic nor ExtendedStatistic")
        ctx.clients.cloudwatch.put_metric_alarm(**request)
        ctx.emit(spec)
        return Created(
            physical_id=name,
            attributes={"Arn": ctx.arn("cloudwatch", f"alarm:{name}")},
            cleanup={"AlarmName": name},
        )

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        with ignore_missing():
            clients.cloudwatch.delete_alarms(AlarmNames=[resource.cleanup["AlarmName"]])


class DashboardProvider(Provider):
    """A dashboard; its body is stored as the template renders it."""

    resource_type = "AWS::CloudWatch::Dashboard"

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        # CloudFormation names an unnamed dashboard "<logicalId>-<RANDOM>" (no stack name).
        name = str(
            properties.get("DashboardName")
            or ctx.generate_name(_MAX_DASHBOARD_NAME, with_stack=False)
        )
        body = require(ctx, properties, "DashboardBody")
        if not isinstance(body, str):
            raise ctx.error("DashboardBody must be a string", path="Properties.DashboardBody")
        ctx.clients.cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
        return Created(physical_id=name, cleanup={"DashboardName": name})

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        with ignore_missing():
            clients.cloudwatch.delete_dashboards(DashboardNames=[resource.cleanup["DashboardName"]])
