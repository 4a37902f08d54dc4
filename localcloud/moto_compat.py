"""The one place moto's internals are imported: what we rely on beyond its public API, and why.

moto's public API is ``moto.mock_aws`` and ``moto.server.ThreadedMotoServer`` (used
directly, not listed here). Everything else the local cloud (and its tests and benchmarks)
takes from moto is an internal: a backend, a model class, a parser, its web layer. Each
is listed in :data:`INTERNALS` with what it is used for, and loads on first use
(``from localcloud.moto_compat import X`` imports X's moto module then, not before, so
start-up keeps overlapping moto's imports with synthesis). moto is pinned exactly; on an
upgrade, ``tests/local_cloud/test_moto_compat.py`` names every internal that moved or
disappeared, and the ``why`` of each says what to check.

One process-wide patch lives here too: :func:`install_describe_alarm_history`.
"""

from __future__ import annotations

import importlib
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any


@dataclass(frozen=True)
class Internal:
    """One moto internal: ``module.attribute``, and what relies on it."""

    module: str
    attribute: str
    why: str

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.attribute}"


_DYNAMO_TYPE = "moto.dynamodb.models.dynamo_type"
_WERKZEUG_APP = "moto.moto_server.werkzeug_app"
_CLOUDWATCH_MODELS = "moto.cloudwatch.models"
_IAM_ACCESS_CONTROL = "moto.iam.access_control"

INTERNALS: dict[str, Internal] = {
    # --- the endpoint: moto's web layer behind our HTTP front (endpoint.py, warm.py)
    "DomainDispatcherApplication": Internal(
        _WERKZEUG_APP,
        "DomainDispatcherApplication",
        "endpoint.py subclasses it to memoize the host -> backend lookup (get_backend_for_host)",
    ),
    "create_backend_app": Internal(
        _WERKZEUG_APP,
        "create_backend_app",
        "the per-service Flask app the dispatcher builds; warm.py builds each ahead",
    ),
    "MotoRequestHandler": Internal(
        _WERKZEUG_APP,
        "MotoRequestHandler",
        "endpoint.py's werkzeug front (kept for comparison) uses moto's request handler",
    ),
    "PRESERVED_HEADER_NAMES_ENVIRON_KEY": Internal(
        "moto.core.request",
        "PRESERVED_HEADER_NAMES_ENVIRON_KEY",
        "endpoint.py builds the WSGI environ as MotoRequestHandler does (S3 metadata names)",
    ),
    "environ_key_for_header": Internal(
        "moto.core.request", "environ_key_for_header", "as PRESERVED_HEADER_NAMES_ENVIRON_KEY"
    ),
    "should_preserve_original_header_name": Internal(
        "moto.core.request",
        "should_preserve_original_header_name",
        "as PRESERVED_HEADER_NAMES_ENVIRON_KEY",
    ),
    # --- start-up warm-up (warm.py)
    "get_backend": Internal(
        "moto.backends", "get_backend", "warm.py instantiates the stack's backends ahead"
    ),
    "DEFAULT_ACCOUNT_ID": Internal(
        "moto.core.models", "DEFAULT_ACCOUNT_ID", "the account warm.py instantiates"
    ),
    "get_partition": Internal(
        "moto.utilities.utils", "get_partition", "global backends (IAM) are keyed by partition"
    ),
    "service_name_from_moto_package_name": Internal(
        "moto.core.utils",
        "service_name_from_moto_package_name",
        "looked up on a service's first error response; warm.py calls it ahead (cached)",
    ),
    # --- botocore service models as moto loads them
    "get_service_model": Internal(
        "moto.core.utils",
        "get_service_model",
        "moto's cached botocore model: the SQS query codec (sqs/protocol.py), the "
        "in-process clients' exceptions (inprocess.py), warm.py",
    ),
    "load_service_model_json": Internal(
        "moto.core.utils",
        "_load_service_model",
        "sqs/testing.py's query-protocol client starts from moto's query-compatible SQS model",
    ),
    # --- the SQS query protocol (sqs/protocol.py)
    "QueryParser": Internal(
        "moto.core.parse", "QueryParser", "parses SQS query-protocol requests for the engine"
    ),
    "SqsQuerySerializer": Internal(
        "moto.core.serialize", "SqsQuerySerializer", "writes SQS query-protocol (XML) answers"
    ),
    "SerializationContext": Internal(
        "moto.core.serialize", "SerializationContext", "carries the request id to the serializer"
    ),
    # --- errors
    "JsonRESTError": Internal(
        "moto.core.exceptions",
        "JsonRESTError",
        "the error moto's JSON services raise: the DynamoDB fast path falls back to moto on "
        "it, the in-process Logs client translates it to boto3's",
    ),
    "ServiceException": Internal(
        "moto.core.exceptions",
        "ServiceException",
        "the error moto's query services (CloudWatch) raise; the in-process client translates it",
    ),
    "CloudWatchValidationError": Internal(
        "moto.cloudwatch.exceptions",
        "ValidationError",
        "raised by the in-process CloudWatch client as moto's web layer would",
    ),
    # --- IAM enforced for the functions' roles (iam_policy.py)
    "IAMPolicy": Internal(
        _IAM_ACCESS_CONTROL,
        "IAMPolicy",
        "evaluates identity-based policy documents (iam_policy.PolicySet): the functions'\n"
        "roles' calls and the API's callers' execute-api:Invoke (apigw/iam_auth.py)",
    ),
    "PermissionResult": Internal(
        _IAM_ACCESS_CONTROL, "PermissionResult", "IAMPolicy's verdict (allow/deny/neutral)"
    ),
    "iam_backends": Internal(
        "moto.iam.models",
        "iam_backends",
        "the roles' inline and attached policies as deployed (iam_policy.RoleAuthorizer)",
    ),
    # --- accounts
    "get_account_id_from": Internal(
        "moto.iam.models",
        "get_account_id_from",
        "the account moto gives an access key (DynamoDB fast path, in-process clients)",
    ),
    # --- IAM authorization of API Gateway methods (apigw/iam_auth.py)
    "create_access_key": Internal(
        _IAM_ACCESS_CONTROL,
        "create_access_key",
        "an access key id -> its IAM user (or assumed role), secret and policies",
    ),
    "CreateAccessKeyFailure": Internal(
        _IAM_ACCESS_CONTROL,
        "CreateAccessKeyFailure",
        "what create_access_key raises for an unknown key or a wrong session token",
    ),
    # --- DynamoDB's fast path on moto's own tables (dynamodb/)
    "dynamodb_backends": Internal(
        "moto.dynamodb.models", "dynamodb_backends", "the tables the fast path reads and writes"
    ),
    "DynamoTable": Internal(
        "moto.dynamodb.models.table", "Table", "the table type: hash/range key attributes, items"
    ),
    "DynamoType": Internal(_DYNAMO_TYPE, "DynamoType", "moto's attribute value, built on store"),
    "DynamoItem": Internal(_DYNAMO_TYPE, "Item", "moto's item, built on store without re-sizing"),
    "LimitedSizeDict": Internal(_DYNAMO_TYPE, "LimitedSizeDict", "an item's attribute dict"),
    "ReservedKeywords": Internal(
        "moto.dynamodb.parsing.reserved_keywords",
        "ReservedKeywords",
        "DynamoDB's reserved words, refused in expressions as AWS does",
    ),
    # --- CloudWatch and Logs in-process (inprocess.py, alarms.py)
    "logs_backends": Internal(
        "moto.logs.models", "logs_backends", "the in-process Logs client writes here"
    ),
    "cloudwatch_backends": Internal(
        _CLOUDWATCH_MODELS,
        "cloudwatch_backends",
        "the in-process CloudWatch client (and its tests) read and write here",
    ),
    "Dimension": Internal(_CLOUDWATCH_MODELS, "Dimension", "put_metric_data's dimensions"),
    "Metric": Internal(_CLOUDWATCH_MODELS, "Metric", "get_metric_data's queries"),
    "MetricStat": Internal(_CLOUDWATCH_MODELS, "MetricStat", "get_metric_data's queries"),
    "MetricDataQuery": Internal(_CLOUDWATCH_MODELS, "MetricDataQuery", "get_metric_data"),
    "Statistics": Internal(_CLOUDWATCH_MODELS, "Statistics", "put_metric_data's statistic sets"),
    "CloudWatchResponse": Internal(
        "moto.cloudwatch.responses",
        "CloudWatchResponse",
        "patched process-wide: install_describe_alarm_history adds the call moto lacks",
    ),
    "ActionResult": Internal(
        "moto.core.responses", "ActionResult", "what the patched DescribeAlarmHistory returns"
    ),
    # --- X-Ray: where the local X-Ray daemon puts the functions' segments (xray.py)
    "xray_backends": Internal(
        "moto.xray.models",
        "xray_backends",
        "xray.moto_segment_sink stores each segment the daemon uploads (process_segment), "
        "as PutTraceSegments does after the daemon's IAM check",
    ),
    # --- benchmarks only (benchmarks/sqs_bench.py fills plain moto's queue directly)
    "sqs_backends": Internal("moto.sqs.models", "sqs_backends", "sqs_bench.py: moto's queues"),
    "SqsMessage": Internal("moto.sqs.models", "Message", "sqs_bench.py: moto's message"),
}


# Written out (not built from INTERNALS) so mypy sees the re-exports; a test compares.
__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "INTERNALS",
    "PRESERVED_HEADER_NAMES_ENVIRON_KEY",
    "ActionResult",
    "CloudWatchResponse",
    "CloudWatchValidationError",
    "CreateAccessKeyFailure",
    "Dimension",
    "DomainDispatcherApplication",
    "DynamoItem",
    "DynamoTable",
    "DynamoType",
    "IAMPolicy",
    "Internal",
    "JsonRESTError",
    "LimitedSizeDict",
    "Metric",
    "MetricDataQuery",
    "MetricStat",
    "MotoRequestHandler",
    "PermissionResult",
    "QueryParser",
    "ReservedKeywords",
    "SerializationContext",
    "ServiceException",
    "SqsMessage",
    "SqsQuerySerializer",
    "Statistics",
    "aware",
    "cloudwatch_backends",
    "create_access_key",
    "create_backend_app",
    "dynamodb_backends",
    "environ_key_for_header",
    "get_account_id_from",
    "get_backend",
    "get_partition",
    "get_service_model",
    "iam_backends",
    "install_describe_alarm_history",
    "load_service_model_json",
    "logs_backends",
    "resolve",
    "service_name_from_moto_package_name",
    "should_preserve_original_header_name",
    "sqs_backends",
    "xray_backends",
]


def resolve(name: str) -> Any:
    """The moto internal listed as ``name``; ``ImportError`` naming it when moto lost it."""
    internal = INTERNALS[name]
    try:
        module = importlib.import_module(internal.module)
        return getattr(module, internal.attribute)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"moto internal {internal.qualified_name} is gone (moto upgraded?); "
            f"localcloud relies on it: {internal.why}"
        ) from error


def __getattr__(name: str) -> Any:
    if name not in INTERNALS:
        raise AttributeError(f"module 'localcloud.moto_compat' has no attribute {name!r}")
    value = resolve(name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


if TYPE_CHECKING:  # what mypy sees; at run time __getattr__ loads each on first use
    from moto.backends import get_backend as get_backend
    from moto.cloudwatch.exceptions import ValidationError as CloudWatchValidationError
    from moto.cloudwatch.models import Dimension as Dimension
    from moto.cloudwatch.models import Metric as Metric
    from moto.cloudwatch.models import MetricDataQuery as MetricDataQuery
    from moto.cloudwatch.models import MetricStat as MetricStat
    from moto.cloudwatch.models import Statistics as Statistics
    from moto.cloudwatch.models import cloudwatch_backends as cloudwatch_backends
    from moto.cloudwatch.responses import CloudWatchResponse as CloudWatchResponse
    from moto.core.exceptions import JsonRESTError as JsonRESTError
    from moto.core.exceptions import ServiceException as ServiceException
    from moto.core.models import DEFAULT_ACCOUNT_ID as DEFAULT_ACCOUNT_ID
    from moto.core.parse import QueryParser as QueryParser
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY as PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    )
    from moto.core.request import environ_key_for_header as environ_key_for_header
    from moto.core.request import (
        should_preserve_original_header_name as should_preserve_original_header_name,
    )
    from moto.core.responses import ActionResult as ActionResult
    from moto.core.serialize import SerializationContext as SerializationContext
    from moto.core.serialize import SqsQuerySerializer as SqsQuerySerializer
    from moto.core.utils import _load_service_model as load_service_model_json
    from moto.core.utils import get_service_model as get_service_model
    from moto.core.utils import (
        service_name_from_moto_package_name as service_name_from_moto_package_name,
    )
    from moto.dynamodb.models import dynamodb_backends as dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType as DynamoType
    from moto.dynamodb.models.dynamo_type import Item as DynamoItem
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict as LimitedSizeDict
    from moto.dynamodb.models.table import Table as DynamoTable
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords as ReservedKeywords
    from moto.iam.access_control import CreateAccessKeyFailure as CreateAccessKeyFailure
    from moto.iam.access_control import IAMPolicy as IAMPolicy
    from moto.iam.access_control import PermissionResult as PermissionResult
    from moto.iam.access_control import create_access_key as create_access_key
    from moto.iam.models import get_account_id_from as get_account_id_from
    from moto.iam.models import iam_backends as iam_backends
    from moto.logs.models import logs_backends as logs_backends
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication as DomainDispatcherApplication,
    )
    from moto.moto_server.werkzeug_app import MotoRequestHandler as MotoRequestHandler
    from moto.moto_server.werkzeug_app import create_backend_app as create_backend_app
    from moto.sqs.models import Message as SqsMessage
    from moto.sqs.models import sqs_backends as sqs_backends
    from moto.utilities.utils import get_partition as get_partition
    from moto.xray.models import xray_backends as xray_backends


# ----------------------------------------------------------------------------------------
# The process-wide patch: CloudWatch's DescribeAlarmHistory on moto's CloudWatchResponse
# ----------------------------------------------------------------------------------------

_history_installed = False


def install_describe_alarm_history() -> bool:
    """Teach moto's CloudWatch ``DescribeAlarmHistory`` (moto 5.2 lacks it), process-wide.

    moto keeps every alarm's previous states (``Alarm.history``, appended by each
    ``SetAlarmState``) but has no handler for the call, so boto3 gets a 500. This sets a
    ``describe_alarm_history`` method on moto's ``CloudWatchResponse`` class that turns
    that record into CloudWatch's ``StateUpdate`` history items, newest first by default.
    Being a class attribute, it serves every moto CloudWatch in this process (the local
    endpoint's and any ``ThreadedMotoServer``), never another process. Idempotent.
    Returns False when moto is not importable.
    """
    global _history_installed
    if _history_installed:
        return True
    try:
        response_class = resolve("CloudWatchResponse")
        action_result = resolve("ActionResult")
    except ImportError:  # pragma: no cover - moto is a dependency
        return False

    def describe_alarm_history(self: Any) -> Any:
        alarm_name = self._get_param("AlarmName")
        item_type = self._get_param("HistoryItemType")
        start = self._get_param("StartDate")
        end = self._get_param("EndDate")
        max_records = int(self._get_param("MaxRecords") or 100)
        scan_by = self._get_param("ScanBy") or "TimestampDescending"
        backend = self.cloudwatch_backend
        alarms = (
            [backend.alarms[alarm_name]]
            if alarm_name and alarm_name in backend.alarms
            else ([] if alarm_name else list(backend.alarms.values()))
        )
        items = [item for alarm in alarms for item in _history_items(alarm)]
        if item_type:
            items = [i for i in items if i["HistoryItemType"] == item_type]
        if start:
            items = [i for i in items if aware(i["Timestamp"]) >= aware(start)]
        if end:
            items = [i for i in items if aware(i["Timestamp"]) <= aware(end)]
        items.sort(key=lambda i: aware(i["Timestamp"]), reverse=scan_by != "TimestampAscending")
        return action_result({"AlarmHistoryItems": items[:max_records]})

    response_class.describe_alarm_history = describe_alarm_history
    _history_installed = True
    return True


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone (moto's timestamps are naive UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _history_items(alarm: Any) -> list[dict[str, Any]]:
    # moto appends the *previous* (reason, data, state, timestamp) on every update, so
    # the states in order are history + current; each adjacent pair is one transition.
    states = [(reason, state, stamp) for (_kind, reason, _data, state, stamp) in alarm.history]
    states.append((alarm.state_reason, alarm.state_value, alarm.state_updated_timestamp))
    items = []
    for (old_reason, old_state, _), (new_reason, new_state, stamp) in itertools.pairwise(states):
        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "MetricAlarm",
                "Timestamp": stamp,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old_state} to {new_state}",
                "HistoryData": json.dumps(
                    {
                        "version": "1.0",
                        "oldState": {"stateValue": old_state, "stateReason": old_reason},
                        "newState": {"stateValue": new_state, "stateReason": new_reason},
                    }
                ),
            }
        )
    return items
