"""The AWS calls the CI commands make: CloudFormation stacks and events, log groups, STS.

Everything goes through :class:`Cloud`, so tests run it against moto (in-process
``mock_aws`` or a moto server reached through ``AWS_ENDPOINT_URL``, which boto3 honours).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_boto3_cloudformation import CloudFormationClient
    from types_boto3_logs import CloudWatchLogsClient
    from types_boto3_sts import STSClient

EPHEMERAL_TAG: Final = "ephemeral"
EXPIRES_AT_TAG: Final = "expires-at"
OWNER_TAG: Final = "owner"
# CloudFormation tags the resources it creates with the owning stack's name.
CFN_STACK_NAME_TAG: Final = "aws:cloudformation:stack-name"
GONE: Final = "DELETE_COMPLETE"
DELETE_FAILED: Final = "DELETE_FAILED"
REVIEW_IN_PROGRESS: Final = "REVIEW_IN_PROGRESS"

_RETRIES: Final = Config(retries={"mode": "standard", "max_attempts": 10})


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without zone is taken as UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class StackInfo:
    """What the commands need to know about one CloudFormation stack."""

    name: str
    status: str
    created: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    termination_protection: bool = False
    stack_id: str = ""
    parent_id: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_ephemeral(self) -> bool:
        """Tagged ``ephemeral=true`` (the only stacks these commands may change)."""
        return self.tags.get(EPHEMERAL_TAG, "").strip().lower() == "true"

    @property
    def in_progress(self) -> bool:
        """An operation is running on the stack (``*_IN_PROGRESS``); leave it alone."""
        return self.status.endswith("_IN_PROGRESS")

    @property
    def busy(self) -> bool:
        """In progress and will change by itself. ``REVIEW_IN_PROGRESS`` (a change set never
        executed, e.g. an interrupted ``cdk deploy``) stays as it is until someone acts."""
        return self.in_progress and self.status != REVIEW_IN_PROGRESS

    def expires_at(self) -> datetime | None:
        """The ``expires-at`` tag in UTC; ``None`` if absent; ``ValueError`` if unreadable."""
        text = self.tags.get(EXPIRES_AT_TAG)
        return None if text is None else parse_time(text)

    @classmethod
    def from_api(cls, stack: Mapping[str, Any]) -> StackInfo:
        """Build from one DescribeStacks ``Stacks`` entry."""
        created = stack["CreationTime"]
        return cls(
            name=stack["StackName"],
            status=stack["StackStatus"],
            created=created.astimezone(UTC),
            tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
            termination_protection=bool(stack.get("EnableTerminationProtection", False)),
            stack_id=stack.get("StackId", ""),
            parent_id=stack.get("ParentId"),
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        )


@dataclass(frozen=True)
class StackEvent:
    """One CloudFormation stack event (used to explain failures)."""

    stack_name: str
    logical_id: str
    resource_type: str
    status: str
    reason: str
    timestamp: datetime

    def line(self) -> str:
        """One human-readable line: when, which resource, what status, why."""
        when = self.timestamp.astimezone(UTC).strftime("%H:%M:%S")
        return (
            f"{when}  {self.stack_name}  {self.logical_id} ({self.resource_type})  "
            f"{self.status}: {self.reason or '(no reason given)'}"
        )


@dataclass(frozen=True)
class LogGroupInfo:
    """A CloudWatch Logs group and its tags."""

    name: str
    tags: Mapping[str, str]


class Cloud:
    """Thin, typed wrapper over the boto3 clients the CI commands use."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        # Created on first use: a Session fails on a missing AWS_PROFILE, and the profile
        # guard must get to say why that profile is refused first.
        self._given_session = session
        self._cfn: CloudFormationClient | None = None
        self._logs: CloudWatchLogsClient | None = None

    @property
    def _session(self) -> boto3.session.Session:
        if self._given_session is None:
            self._given_session = boto3.session.Session()
        return self._given_session

    @property
    def cfn(self) -> CloudFormationClient:
        """The CloudFormation client (created on first use)."""
        if self._cfn is None:
            self._cfn = self._session.client("cloudformation", config=_RETRIES)
        return self._cfn

    @property
    def logs(self) -> CloudWatchLogsClient:
        """The CloudWatch Logs client (created on first use)."""
        if self._logs is None:
            self._logs = self._session.client("logs", config=_RETRIES)
        return self._logs

    def account_id(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity)."""
        sts: STSClient = self._session.client("sts", config=_RETRIES)
        return sts.get_caller_identity()["Account"]

    def list_stacks(self) -> list[StackInfo]:
        """Every live stack in the region (DescribeStacks, all pages; deleted ones dropped)."""
        stacks: list[StackInfo] = []
        for page in self.cfn.get_paginator("describe_stacks").paginate():
            stacks.extend(StackInfo.from_api(s) for s in page["Stacks"])
        return [s for s in stacks if s.status != GONE]

    def get_stack(self, name: str) -> StackInfo | None:
        """The stack called ``name``, or ``None`` when it does not exist (or is deleted)."""
        try:
            found = self.cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if _is_missing_stack(error):
                return None
            raise
        live = [StackInfo.from_api(s) for s in found if s["StackStatus"] != GONE]
        return live[0] if live else None

    def events(self, name: str, since: datetime | None = None) -> list[StackEvent]:
        """The stack's events, oldest first, only those at or after ``since`` if given."""
        collected: list[StackEvent] = []
        try:
            # Events come newest first: stop paging once we are before ``since``.
            for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=name):
                for event in page["StackEvents"]:
                    stamp = event["Timestamp"].astimezone(UTC)
                    if since is not None and stamp < since:
                        return collected[::-1]
                    collected.append(
                        StackEvent(
                            stack_name=event["StackName"],
                            logical_id=event.get("LogicalResourceId", ""),
                            resource_type=event.get("ResourceType", ""),
                            status=event.get("ResourceStatus", ""),
                            reason=event.get("ResourceStatusReason", ""),
                            timestamp=stamp,
                        )
                    )
        except ClientError as error:
            if _is_missing_stack(error):
                return []
            raise
        return collected[::-1]

    def failed_events(self, name: str, since: datetime | None = None) -> list[StackEvent]:
        """The stack's ``*_FAILED`` events (oldest first): which resources failed and why."""
        return [e for e in self.events(name, since) if e.status.endswith("_FAILED")]

    def delete_stack(self, name: str) -> None:
        """Start deleting a stack through the CloudFormation API (asynchronous)."""
        self.cfn.delete_stack(StackName=name)

    def log_groups(self, name_filter: Callable[[str], bool]) -> list[LogGroupInfo]:
        """The region's log groups whose name passes ``name_filter``, with their tags."""
        groups: list[LogGroupInfo] = []
        for page in self.logs.get_paginator("describe_log_groups").paginate():
            for group in page["logGroups"]:
                if not name_filter(group["logGroupName"]):
                    continue
                # Tag APIs take the ARN without the trailing ":*" (``logGroupArn``).
                arn = group.get("logGroupArn") or group.get("arn", "").removesuffix(":*")
                tags = self.logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
                groups.append(LogGroupInfo(name=group["logGroupName"], tags=tags))
        return groups

    def delete_log_group(self, name: str) -> None:
        """Delete one log group; an already missing group is not an error."""
        try:
            self.logs.delete_log_group(logGroupName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise


def _is_missing_stack(error: ClientError) -> bool:
    info = error.response.get("Error", {})
    return info.get("Code") == "ValidationError" and "does not exist" in info.get("Message", "")
