"""Helpers for tests that drive SQS over the wire (ours or moto's) with boto3."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.clients import DUMMY_KEY, local_client

REGION = "us-east-1"
# Tests see every error as it happens: no client-side retries (a throttle must surface).
NO_RETRIES = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    read_timeout=60,
    max_pool_connections=64,
)


def client(service: str, endpoint_url: str, config: Config = NO_RETRIES) -> Any:
    """A boto3 client for a local endpoint, from a session of its own (thread-safe to
    create from any test thread)."""
    return local_client(
        service, endpoint_url, REGION, config=config, session=boto3.session.Session()
    )


class _QueryProtocolLoader(botocore.loaders.Loader):
    """botocore's loader, with SQS's model turned into the query protocol SQS spoke before
    JSON (moto's query-compatible copy of the model, whose members carry their query
    names)."""

    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        if service_name != "sqs" or type_name != "service-2":
            return super().load_service_model(service_name, type_name, api_version)
        from localcloud.moto_compat import load_service_model_json

        model = copy.deepcopy(load_service_model_json("sqs", "service-2"))
        model["metadata"]["protocol"] = "query"
        model["metadata"]["protocols"] = ["query"]
        model["metadata"].pop("awsQueryCompatible", None)

        shapes = model["shapes"]

        def query_name(reference: dict[str, Any]) -> None:
            # The reference's own query name, else its shape's (a flattened map or list,
            # e.g. TagQueue's Tags -> Tag.N.Key / Tag.N.Value).
            name = reference.get("locationNameForQueryCompatibility") or shapes.get(
                reference.get("shape"), {}
            ).get("locationNameForQueryCompatibility")
            if name:
                reference["locationName"] = name

        for shape in shapes.values():
            for member in shape.get("members", {}).values():
                query_name(member)
            for key in ("member", "key", "value"):
                if key in shape:
                    query_name(shape[key])
        return model


def query_client(
    endpoint_url: str, config: Config = NO_RETRIES, credentials: Mapping[str, str] | None = None
) -> Any:
    """A botocore SQS client that speaks the query protocol (``Action=...`` forms, XML),
    signing with dummy keys or the ``AWS_*`` ``credentials`` given (a function's)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _QueryProtocolLoader())
    keys = credentials or {}
    return session.create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID", DUMMY_KEY),
        aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY", DUMMY_KEY),
        aws_session_token=keys.get("AWS_SESSION_TOKEN"),
        config=config,
    )


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a boto3 call that must fail and return its ``Error`` dict (Code, Message, ...)."""
    try:
        call()
    except ClientError as error:
        return dict(error.response["Error"])
    raise AssertionError("the call succeeded; an error was expected")


@dataclass
class SqsBackend:
    """One SQS implementation under test and a boto3 client for it."""

    kind: str  # "engine" or "moto"
    url: str
    sqs: Any

    def queue(self, *, fifo: bool = True, name: str | None = None, **attributes: Any) -> str:
        """Create a uniquely named queue and return its URL."""
        base = name or f"q-{uuid.uuid4().hex[:12]}"
        attrs = {key: str(value) for key, value in attributes.items()}
        if fifo:
            base += ".fifo"
            attrs.setdefault("FifoQueue", "true")
            attrs.setdefault("ContentBasedDeduplication", "true")
        return str(self.sqs.create_queue(QueueName=base, Attributes=attrs)["QueueUrl"])

    def arn(self, queue_url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])
