"""What every resource provider sees: the deployment context, the boto3 clients, the result."""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
from botocore.config import Config

from localcloud.cfn.assembly import CloudAssembly
from localcloud.cfn.errors import TemplateError
from localcloud.clients import local_client
from localcloud.specs import AlarmSpec, EventSourceMappingSpec, FunctionSpec

if TYPE_CHECKING:
    from types_boto3_cloudwatch import CloudWatchClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_iam import IAMClient
    from types_boto3_logs import CloudWatchLogsClient
    from types_boto3_sqs import SQSClient

_NAME_ALPHABET = string.ascii_uppercase + string.digits
_CLIENT_CONFIG = Config(
    # One retry: a local endpoint either answers or is gone. A stopped endpoint refuses
    # connections at once, so teardown after a stop does not hang on backoff.
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=2,
    read_timeout=30,
)


_lock = threading.Lock()
_session: boto3.session.Session | None = None
_client_cache: dict[tuple[str, str, str], Any] = {}


def _cached_client(service: str, endpoint_url: str, region: str) -> Any:
    # One session and one client per (service, endpoint, region) for the whole process:
    # creating a client parses botocore's JSON service model (~20-100 ms each, the
    # largest part of a first deployment); a later deployment reuses them. boto3
    # clients are thread-safe; creating them from a shared session is not, hence the lock.
    global _session
    key = (service, endpoint_url, region)
    with _lock:
        if key not in _client_cache:
            if _session is None:
                _session = boto3.session.Session()
            _client_cache[key] = local_client(
                service, endpoint_url, region, config=_CLIENT_CONFIG, session=_session
            )
        return _client_cache[key]


SERVICES = ("sqs", "dynamodb", "iam", "logs", "cloudwatch")
"""The services the providers call."""


def preload_clients(region: str) -> None:
    """Load the service models the engine's clients need (~0.3 s of CPU) ahead of time.

    Meant to run while something else takes the time (``harness local up`` synthesizes
    in a subprocess): the deployment then creates its clients in a few ms each.
    """
    for service in SERVICES:
        # A client for an address never contacted: creating it loads and caches the model.
        _cached_client(service, "http://127.0.0.1:9", region)


class Clients:
    """boto3 clients for the local endpoint, created on first use."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region

    def _client(self, service: str) -> Any:
        return _cached_client(service, self.endpoint_url, self.region)

    @property
    def sqs(self) -> SQSClient:
        return self._client("sqs")  # type: ignore[no-any-return]

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")  # type: ignore[no-any-return]

    @property
    def iam(self) -> IAMClient:
        return self._client("iam")  # type: ignore[no-any-return]

    @property
    def logs(self) -> CloudWatchLogsClient:
        return self._client("logs")  # type: ignore[no-any-return]

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self._client("cloudwatch")  # type: ignore[no-any-return]

    @property
    def ssm(self) -> Any:
        return self._client("ssm")


@dataclass
class ApiGatewayModel:
    """The API Gateway resources seen so far; turned into ``RestApiSpec``s at the end."""

    apis: dict[str, dict[str, Any]] = field(default_factory=dict)  # api id -> RestApi info
    resources: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # id -> api, parent, part
    methods: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[str, str] = field(default_factory=dict)  # deployment id -> api id
    stages: list[dict[str, Any]] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)  # key id -> key value
    stage_keys: list[tuple[str, str, str]] = field(default_factory=list)  # key id, api id, stage
    usage_plans: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict
    )  # id -> [(api, stage)]
    usage_plan_keys: list[tuple[str, str]] = field(default_factory=list)  # plan id, key id
    # api id -> response type -> GatewayResponse properties
    gateway_responses: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class DeploymentState:
    """What providers collect across all stacks of one deployment."""

    functions: list[FunctionSpec] = field(default_factory=list)
    event_source_mappings: list[EventSourceMappingSpec] = field(default_factory=list)
    alarms: list[AlarmSpec] = field(default_factory=list)
    queue_urls_by_arn: dict[str, str] = field(default_factory=dict)
    apigateway: ApiGatewayModel = field(default_factory=ApiGatewayModel)
    temp_dirs: list[Path] = field(default_factory=list)
    # (spec, stack name, logical id) in creation order: handed to LocalServices at the end.
    pending: list[tuple[FunctionSpec | EventSourceMappingSpec | AlarmSpec, str, str]] = field(
        default_factory=list
    )


@dataclass
class ProviderContext:
    """Everything a provider needs to create one resource."""

    stack_name: str
    logical_id: str
    region: str
    account_id: str
    clients: Clients
    assembly: CloudAssembly
    state: DeploymentState
    stack_tags: Mapping[str, str]
    partition: str = "aws"

    def generate_name(
        self, max_length: int, *, suffix: str = "", with_stack: bool = True, separator: str = "-"
    ) -> str:
        """A physical name the way CloudFormation makes one: ``<stack>-<logicalId>-<RANDOM>``.

        Trimmed to ``max_length`` (``suffix``, e.g. ``.fifo``, included), random part kept.
        """
        random_part = "".join(random.choices(_NAME_ALPHABET, k=12))
        base = f"{self.stack_name}{separator}{self.logical_id}" if with_stack else self.logical_id
        room = max_length - len(suffix) - len(random_part) - len(separator)
        return f"{base[:room]}{separator}{random_part}{suffix}"

    def tags(self, template_tags: object) -> dict[str, str]:
        """Stack tags (from the manifest) overlaid by the resource's own ``Tags`` list."""
        merged = dict(self.stack_tags)
        if isinstance(template_tags, list):
            for tag in template_tags:
                if isinstance(tag, dict) and "Key" in tag:
                    merged[str(tag["Key"])] = str(tag.get("Value", ""))
        elif isinstance(template_tags, dict):
            merged.update({str(k): str(v) for k, v in template_tags.items()})
        return merged

    def error(self, message: str, path: str | None = None) -> TemplateError:
        """A ``TemplateError`` located at this resource."""
        return TemplateError(message, stack=self.stack_name, logical_id=self.logical_id, path=path)

    def emit(self, spec: FunctionSpec | EventSourceMappingSpec | AlarmSpec) -> None:
        """Record a spec for ``LocalServices`` (called once every stack is provisioned)."""
        if isinstance(spec, FunctionSpec):
            self.state.functions.append(spec)
        elif isinstance(spec, EventSourceMappingSpec):
            self.state.event_source_mappings.append(spec)
        else:
            self.state.alarms.append(spec)
        self.state.pending.append((spec, self.stack_name, self.logical_id))

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        """``arn:aws:<service>:<region>:<account>:<resource>``."""
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id}:{resource}"
        )


@dataclass
class Created:
    """The outcome of creating a resource: its ``Ref`` value, ``GetAtt`` values, cleanup info."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    cleanup: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployedResource:
    """A resource of a deployed stack."""

    stack_name: str
    logical_id: str
    resource_type: str
    physical_id: str
    attributes: dict[str, Any]
    cleanup: dict[str, Any]


StaticResolve = Callable[[object], Any]
"""Resolves a template value when it depends on nothing created (raises ``NeedsDeployment``)."""


class NeedsDeployment(Exception):
    """A value cannot be resolved before the resources it refers to exist."""


@dataclass(frozen=True)
class ValidationContext:
    """What a provider sees when the assembly is checked, before anything is created."""

    stack_name: str
    logical_id: str
    region: str
    account_id: str
    assembly: CloudAssembly
    resolve: StaticResolve

    def error(self, message: str, path: str | None = None) -> TemplateError:
        """A ``TemplateError`` located at this resource."""
        return TemplateError(message, stack=self.stack_name, logical_id=self.logical_id, path=path)

    def try_resolve(self, value: object) -> Any:
        """``value`` resolved, or ``None`` when it depends on resources not created yet."""
        try:
            return self.resolve(value)
        except NeedsDeployment:
            return None


class Provider:
    """Creates and deletes one resource type.

    ``attributes`` lists the ``Fn::GetAtt`` names the provider returns, so a template
    asking for another one fails validation before anything is created.
    """

    resource_type: ClassVar[str]
    attributes: ClassVar[frozenset[str]] = frozenset()

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        """Check what can be checked before deploying (raise ``TemplateError``)."""

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        """Create the resource from its resolved properties."""
        raise NotImplementedError

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        """Delete the resource through boto3 (nothing for resources only the engine knows)."""


def require(ctx: ProviderContext, properties: Mapping[str, Any], name: str) -> Any:
    """A required property, or a ``TemplateError`` naming it."""
    if name not in properties:
        raise ctx.error(f"required property {name!r} is missing", path=f"Properties.{name}")
    return properties[name]


def as_bool(value: object) -> bool:
    """A CloudFormation boolean (``true``, ``"true"``, ``"True"``)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` as ``[{"Key": "k", "Value": "v"}]``."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


@contextmanager
def undo_on_error(provider: Provider, ctx: ProviderContext, created: Created) -> Iterator[None]:
    """Delete ``created`` if a later step of the same resource's creation fails.

    The engine rolls back only resources whose creation finished; a provider that
    makes several calls uses this so a half-made resource does not stay behind.
    """
    try:
        yield
    except BaseException:
        resource = DeployedResource(
            stack_name=ctx.stack_name,
            logical_id=ctx.logical_id,
            resource_type=provider.resource_type,
            physical_id=created.physical_id,
            attributes=created.attributes,
            cleanup=created.cleanup,
        )
        with suppress(Exception):
            provider.delete(ctx.clients, resource)
        raise
