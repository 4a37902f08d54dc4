"""Queues: creation and its errors, attributes (SSE/KMS included), tags, permissions,
listing, purge, deleted queues.

Replays of AWS-validated cases of LocalStack's ``tests/aws/services/sqs/test_sqs.py``
(see :mod:`tests.parity.test_sqs_messages` for how they are written and compared).
Queues are created through the JSON protocol, as the recordings' ``sqs_create_queue``
fixture did, so a creation error has the JSON form under both protocol parameters.
"""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Any

import pytest

from tests.parity.backends import Sqs
from tests.parity.expect import (
    Error,
    answer,
    invalid_attribute_name,
    invalid_parameter_value,
    ok,
)

recorded = pytest.mark.aws_recording

QUEUE_ARN = "arn:<partition>:sqs:<region>:<account>:<resource:1>"


def standard_attributes(**changes: str) -> dict[str, str]:
    """GetQueueAttributes All of a new standard queue, as recorded."""
    return {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "CreatedTimestamp": "<timestamp-s>",
        "DelaySeconds": "0",
        "LastModifiedTimestamp": "<timestamp-s>",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "QueueArn": QUEUE_ARN,
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
        "VisibilityTimeout": "30",
        **changes,
    }


def get_all(sqs: Sqs, queue: str) -> dict[str, Any]:
    return answer(lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]))


# -- listing ------------------------------------------------------------------------------


@recorded("test_list_queues", validated="2024-04-30")
@pytest.mark.protocols("json")
def test_list_queues(sqs: Sqs) -> None:
    run = uuid.uuid4().hex[:6]
    names = [f"a{run}-test-queue-1", f"a{run}-test-queue-2", f"b{run}-test-queue-1"]
    urls = []
    for name in names:
        sqs.create_queue(name)
        url = sqs.client.get_queue_url(QueueName=name)["QueueUrl"]
        assert url.endswith(name)
        urls.append(url)
    assert sorted(sqs.client.list_queues(QueueNamePrefix=f"a{run}-")["QueueUrls"]) == urls[:2]
    assert sqs.client.list_queues(QueueNamePrefix=f"b{run}-")["QueueUrls"] == urls[2:]
    everything = sqs.client.list_queues()["QueueUrls"]
    assert all(url in everything for url in urls)
    assert "QueueUrls" not in sqs.client.list_queues(QueueNamePrefix=f"nonexisting-{run}-")


@recorded("test_list_queues_pagination", validated="2025-03-19")
@pytest.mark.protocols("json")
def test_list_queues_pagination(sqs: Sqs) -> None:
    prefix = uuid.uuid4().hex[:8]
    for i in range(10):
        sqs.create_queue(f"{prefix}-test-queue-{i}")
    urls = [f"<endpoint>/<account>/{prefix}-test-queue-{i}" for i in range(10)]
    sqs.expect(
        "list_all",
        answer(lambda: sqs.client.list_queues(QueueNamePrefix=prefix)),
        ok(QueueUrls=urls),
    )
    first = answer(lambda: sqs.client.list_queues(MaxResults=2, QueueNamePrefix=prefix))
    sqs.expect("list_two_max", first, ok(NextToken="<next-token>", QueueUrls=urls[:2]))
    rest = answer(
        lambda: sqs.client.list_queues(
            MaxResults=10, NextToken=first["NextToken"], QueueNamePrefix=prefix
        )
    )
    sqs.expect("list_remaining", rest, ok(QueueUrls=urls[2:]))


# -- creation -----------------------------------------------------------------------------


@recorded("test_create_queue_and_get_attributes", validated="2024-04-30")
@pytest.mark.moto_differs("CreatedTimestamp and LastModifiedTimestamp have fractions of a second")
def test_create_queue_and_get_attributes(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    names = ["QueueArn", "CreatedTimestamp", "VisibilityTimeout"]
    attributes = answer(
        lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=names)
    )
    # The recording asserts these three, the ARN naming the queue and a recent timestamp.
    sqs.expect(
        "attributes",
        attributes,
        ok(
            Attributes={
                "QueueArn": "arn:<partition>:sqs:<region>:<account>:test-queue-<resource>",
                "CreatedTimestamp": "<timestamp-s>",
                "VisibilityTimeout": "30",
            }
        ),
    )


@recorded("test_create_queue_recently_deleted", validated="2024-04-30")
@pytest.mark.moto_differs("a deleted queue's name can be reused at once")
def test_create_queue_recently_deleted(sqs: Sqs) -> None:
    name = sqs.name()
    queue = sqs.create_queue(name)
    sqs.client.delete_queue(QueueUrl=queue)
    error = answer(lambda: sqs.json.create_queue(QueueName=name))
    # The recording matches these two in the error's text.
    assert "QueueDeletedRecently" in json.dumps(error["Error"]), error
    assert error["Error"]["Message"] == (
        "You must wait 60 seconds after deleting a queue before you can create another with "
        "the same name."
    ), error


QUEUE_EXISTS = Error(
    "QueueAlreadyExists",
    "A queue already exists with the same name and a different value for attribute {}",
    "QueueNameExists",
)


def _exists(attribute: str) -> dict[str, Any]:
    error = QUEUE_EXISTS
    return Error(error.code, error.message.format(attribute), error.json_type).on("json")


@recorded("test_create_fifo_queue_with_different_attributes_raises_error", validated="2024-04-30")
@pytest.mark.moto_differs("the message does not name the differing attribute")
def test_create_fifo_queue_with_different_attributes_raises_error(sqs: Sqs) -> None:
    name = sqs.name("queue", ".fifo")
    sqs.create_queue(name, FifoQueue="true", ContentBasedDeduplication="true")
    error = answer(
        lambda: sqs.json.create_queue(
            QueueName=name,
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
        )
    )
    sqs.expect("queue-already-exists", error, _exists("ContentBasedDeduplication"))


@recorded("test_create_queue_with_different_attributes_raises_exception", validated="2024-04-30")
@pytest.mark.moto_differs("the message does not name the differing attribute")
def test_create_queue_with_different_attributes_raises_exception(sqs: Sqs) -> None:
    name = sqs.name("queue")
    queue = sqs.create_queue(name, ReceiveMessageWaitTimeSeconds="1", DelaySeconds="1")
    assert sqs.create_queue(name) == queue
    assert sqs.create_queue(name, DelaySeconds="1") == queue
    error = answer(
        lambda: sqs.json.create_queue(
            QueueName=name, Attributes={"ReceiveMessageWaitTimeSeconds": "1", "DelaySeconds": "2"}
        )
    )
    sqs.expect("create_queue_01", error, _exists("DelaySeconds"))
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"DelaySeconds": "2"})
    assert sqs.create_queue(name, ReceiveMessageWaitTimeSeconds="1", DelaySeconds="2") == queue
    error = answer(
        lambda: sqs.json.create_queue(
            QueueName=name, Attributes={"ReceiveMessageWaitTimeSeconds": "1", "DelaySeconds": "1"}
        )
    )
    sqs.expect("create_queue_02", error, _exists("DelaySeconds"))


@recorded("test_create_standard_queue_with_fifo_attribute_raises_error", validated="2024-05-15")
@pytest.mark.moto_differs("FIFO-only attributes are accepted on a standard queue")
def test_create_standard_queue_with_fifo_attribute_raises_error(sqs: Sqs) -> None:
    name = sqs.name("queue")
    for key, attribute, value, message in (
        ("invalid-attribute-fifo-queue", "FifoQueue", "false", "Unknown Attribute FifoQueue."),
        (
            "invalid-attribute-content-based-deduplication",
            "ContentBasedDeduplication",
            "false",
            "Unknown Attribute ContentBasedDeduplication.",
        ),
        (
            "invalid-attribute-deduplication-scope",
            "DeduplicationScope",
            "queue",
            "You can specify the DeduplicationScope only when FifoQueue is set to true.",
        ),
        (
            "invalid-attribute-throughput-limit",
            "FifoThroughputLimit",
            "perQueue",
            "You can specify the FifoThroughputLimit only when FifoQueue is set to true.",
        ),
    ):
        error = answer(
            partial(sqs.json.create_queue, QueueName=name, Attributes={attribute: value})
        )
        sqs.expect(key, error, invalid_attribute_name(message).on("json"))


UNKNOWN_FIFO_QUEUE = invalid_attribute_name("Unknown Attribute FifoQueue.")


@recorded("test_set_unsupported_attribute_standard", validated="2024-05-14")
@pytest.mark.moto_differs("FifoQueue can be set on a standard queue")
def test_set_unsupported_attribute_standard(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    for key, value in (("invalid-attr-name-1", "true"), ("invalid-attr-name-2", "false")):
        error = answer(
            partial(
                sqs.client.set_queue_attributes, QueueUrl=queue, Attributes={"FifoQueue": value}
            )
        )
        sqs.expect(key, error, UNKNOWN_FIFO_QUEUE.on(sqs.protocol))


@recorded("test_set_unsupported_attribute_fifo", validated="2024-05-14")
@pytest.mark.moto_differs("FifoQueue can be set on a standard queue")
def test_set_unsupported_attribute_fifo(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    error = answer(
        lambda: sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"FifoQueue": "true"})
    )
    sqs.expect("invalid-attr-name-1", error, UNKNOWN_FIFO_QUEUE.on(sqs.protocol))
    fifo = sqs.create_queue(sqs.name("queue", ".fifo"), FifoQueue="true")
    sqs.client.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "true"})
    error = answer(
        lambda: sqs.client.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "false"})
    )
    changing_type = Error(
        "InvalidAttributeValue",
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
        "InvalidAttributeValue",
        message_field=True,
    )
    sqs.expect("invalid-attr-name-2", error, changing_type.on(sqs.protocol))


# -- attributes ---------------------------------------------------------------------------


@recorded("test_create_and_update_queue_attributes", validated="2025-08-19")
@pytest.mark.moto_differs("CreatedTimestamp and LastModifiedTimestamp have fractions of a second")
def test_create_and_update_queue_attributes(sqs: Sqs) -> None:
    queue = sqs.create_queue(
        MessageRetentionPeriod="604800", ReceiveMessageWaitTimeSeconds="10", VisibilityTimeout="20"
    )
    created = {"MessageRetentionPeriod": "604800", "ReceiveMessageWaitTimeSeconds": "10"}
    sqs.expect(
        "get_queue_attributes",
        get_all(sqs, queue),
        ok(Attributes=standard_attributes(**created, VisibilityTimeout="20")),
    )
    sqs.client.set_queue_attributes(
        QueueUrl=queue,
        Attributes={"MaximumMessageSize": "2048", "VisibilityTimeout": "69", "DelaySeconds": "420"},
    )
    updated = standard_attributes(
        **created, MaximumMessageSize="2048", VisibilityTimeout="69", DelaySeconds="420"
    )
    sqs.expect("get_updated_queue_attributes", get_all(sqs, queue), ok(Attributes=updated))


@recorded("test_fifo_set_content_based_deduplication_strategy", validated="2025-08-19")
@pytest.mark.moto_differs("CreatedTimestamp and LastModifiedTimestamp have fractions of a second")
def test_fifo_set_content_based_deduplication_strategy(sqs: Sqs) -> None:
    queue = sqs.create_queue(
        sqs.name("queue", ".fifo"),
        FifoQueue="true",
        SqsManagedSseEnabled="true",
        ContentBasedDeduplication="true",
    )
    fifo = {"DeduplicationScope": "queue", "FifoQueue": "true", "FifoThroughputLimit": "perQueue"}
    sqs.expect(
        "before-update",
        get_all(sqs, queue),
        ok(Attributes=standard_attributes(**fifo, ContentBasedDeduplication="true")),
    )
    sqs.client.set_queue_attributes(
        QueueUrl=queue, Attributes={"ContentBasedDeduplication": "false"}
    )
    sqs.expect(
        "after-update",
        get_all(sqs, queue),
        ok(Attributes=standard_attributes(**fifo, ContentBasedDeduplication="false")),
    )


@recorded("test_set_empty_redrive_policy", validated="2024-08-20")
def test_set_empty_redrive_policy(sqs: Sqs) -> None:
    name = sqs.name("dl-queue")
    queue = sqs.create_queue(name)
    arn = sqs.arn(queue)
    # The recording names the queue, not its URL, in the first two calls.
    sqs.client.set_queue_attributes(QueueUrl=name, Attributes={"RedrivePolicy": ""})
    attributes = sqs.client.get_queue_attributes(QueueUrl=name, AttributeNames=["All"])[
        "Attributes"
    ]
    assert "RedrivePolicy" not in attributes
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "42"})
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": policy})
    attributes = sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
        "Attributes"
    ]
    assert arn in attributes["RedrivePolicy"]
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": ""})
    attributes = sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
        "Attributes"
    ]
    assert "RedrivePolicy" not in attributes


SSE_NAMES = ["KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"]


@recorded("test_sse_queue_attributes", validated="2024-04-30")
def test_sse_queue_attributes(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    kms = {
        "KmsMasterKeyId": "testKeyId",
        "KmsDataKeyReusePeriodSeconds": "6000",
        "SqsManagedSseEnabled": "false",
    }
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes=kms)
    sqs.expect(
        "sse_kms_attributes",
        answer(lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=SSE_NAMES)),
        ok(Attributes=kms),
    )
    queue = sqs.create_queue()
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"SqsManagedSseEnabled": "true"})
    sqs.expect(
        "sse_sqs_attributes",
        answer(lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=SSE_NAMES)),
        ok(Attributes={"SqsManagedSseEnabled": "true"}),
    )


@recorded("test_set_queue_attributes_default_values", validated="2025-12-10")
@pytest.mark.moto_differs("CreatedTimestamp and LastModifiedTimestamp have fractions of a second")
def test_set_queue_attributes_default_values(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.expect(
        "get-queue-attributes-initial-values",
        get_all(sqs, queue),
        ok(Attributes=standard_attributes()),
    )
    sqs.client.set_queue_attributes(
        QueueUrl=queue,
        Attributes={"KmsMasterKeyId": "testKeyId", "KmsDataKeyReusePeriodSeconds": "6000"},
    )
    with_kms = standard_attributes(
        KmsDataKeyReusePeriodSeconds="6000",
        KmsMasterKeyId="testKeyId",
        SqsManagedSseEnabled="false",
    )
    sqs.expect("get-queue-attributes-after-update", get_all(sqs, queue), ok(Attributes=with_kms))
    sqs.client.set_queue_attributes(
        QueueUrl=queue, Attributes={"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "300"}
    )
    # Recorded: the KMS attributes are gone and SQS-managed SSE stays off.
    sqs.expect(
        "get-queue-attributes-after-set-to-defaults",
        get_all(sqs, queue),
        ok(Attributes=standard_attributes(SqsManagedSseEnabled="false")),
    )


@recorded("test_sse_kms_and_sqs_are_mutually_exclusive", validated="2024-04-30")
@pytest.mark.moto_differs("KMS and SQS-managed SSE are accepted together")
def test_sse_kms_and_sqs_are_mutually_exclusive(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    error = answer(
        lambda: sqs.client.set_queue_attributes(
            QueueUrl=queue,
            Attributes={"KmsMasterKeyId": "testKeyId", "SqsManagedSseEnabled": "true"},
        )
    )
    # The recording kept only the error's text.
    assert error["Error"]["Code"] == "InvalidAttributeName", error
    assert error["Error"]["Message"] == (
        "You can use one type of server-side encryption (SSE) at one time. You can either "
        "enable KMS SSE or SQS SSE."
    ), error


@recorded("test_approximate_number_of_messages_not_visible", validated="2025-09-26")
def test_approximate_number_of_messages_not_visible(sqs: Sqs) -> None:
    queue = sqs.create_queue(VisibilityTimeout="60")
    for n in range(1, 7):
        sqs.client.send_message(QueueUrl=queue, MessageBody=f"message-{n}")
    sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)
    assert sqs.counts(queue) == ("5", "1", "0")
    sqs.sleep(60)
    assert sqs.counts(queue) == ("6", "0", "0")


# -- tags and permissions -----------------------------------------------------------------


@recorded("test_tag_untag_queue", validated="2024-04-30")
@pytest.mark.moto_differs("an empty Tags map is returned", protocols=("json",))
def test_tag_untag_queue(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    tags = {"tag1": "value1", "tag2": "value2", "tag3": ""}
    sqs.client.tag_queue(QueueUrl=queue, Tags=tags)
    sqs.expect(
        "get-tag-1", answer(lambda: sqs.client.list_queue_tags(QueueUrl=queue)), ok(Tags=tags)
    )
    sqs.client.untag_queue(QueueUrl=queue, TagKeys=["tag1", "tag3"])
    sqs.expect(
        "get-tag-2",
        answer(lambda: sqs.client.list_queue_tags(QueueUrl=queue)),
        ok(Tags={"tag2": "value2"}),
    )
    sqs.client.untag_queue(QueueUrl=queue, TagKeys=["tag2"])
    sqs.expect(
        "get-tag-after-untag", answer(lambda: sqs.client.list_queue_tags(QueueUrl=queue)), ok()
    )


OTHER_ACCOUNT = "668614515564"


@recorded("test_sqs_permission_lifecycle", validated="2024-04-30")
@pytest.mark.moto_differs("the policy version is 2012-10-17")
def test_sqs_permission_lifecycle(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    queue_arn = "arn:<partition>:sqs:<region>:<account>:<resource:2>"

    def statement(label: str, principal: Any) -> dict[str, Any]:
        return {
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "SQS:ReceiveMessage",
            "Resource": queue_arn,
        }

    def policy(*statements: dict[str, Any]) -> dict[str, Any]:
        return ok(
            Attributes={
                "Policy": {
                    "Version": "2008-10-17",
                    "Id": f"{queue_arn}/SQSDefaultPolicy",
                    "Statement": list(statements),
                }
            }
        )

    def get_policy() -> dict[str, Any]:
        response = answer(
            lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])
        )
        if "Attributes" in response:
            document = json.loads(response["Attributes"]["Policy"])
            # As the recording does: the order of the principals is not fixed.
            principals = document["Statement"][0]["Principal"]["AWS"]
            if isinstance(principals, list):
                principals.sort(key=lambda arn: 0 if OTHER_ACCOUNT in arn else 1)
            response["Attributes"]["Policy"] = document
        return response

    own = "arn:<partition>:iam::<account>:root"
    other = f"arn:<partition>:iam::{OTHER_ACCOUNT}:root"
    added = answer(
        lambda: sqs.client.add_permission(
            QueueUrl=queue,
            AWSAccountIds=[sqs.account, OTHER_ACCOUNT],
            Actions=["ReceiveMessage"],
            Label="crossaccountpermission",
        )
    )
    sqs.expect("add-permission-response", added, ok())
    sqs.expect(
        "get-queue-policy-attribute",
        get_policy(),
        policy(statement("crossaccountpermission", [other, own])),
    )
    removed = answer(
        lambda: sqs.client.remove_permission(QueueUrl=queue, Label="crossaccountpermission")
    )
    sqs.expect("remove-permission-response", removed, ok())
    sqs.expect("get-queue-policy-attribute-after-removal", get_policy(), ok())

    def add(label: str, account: str) -> dict[str, Any]:
        return answer(
            lambda: sqs.client.add_permission(
                QueueUrl=queue, AWSAccountIds=[account], Actions=["ReceiveMessage"], Label=label
            )
        )

    add("crossaccountpermission", sqs.account)
    first = statement("crossaccountpermission", own)
    sqs.expect("get-queue-policy-attribute-first-account-same-label", get_policy(), policy(first))
    sqs.expect(
        "get-queue-policy-attribute-second-account-same-label",
        add("crossaccountpermission", OTHER_ACCOUNT),
        invalid_parameter_value(
            "Value crossaccountpermission for parameter Label is invalid. Reason: Already exists."
        ).on(sqs.protocol),
    )
    add("crossaccountpermission2", sqs.account)
    second = statement("crossaccountpermission2", own)
    sqs.expect(
        "get-queue-policy-attribute-second-account-different-label",
        get_policy(),
        policy(first, second),
    )
    sqs.client.remove_permission(QueueUrl=queue, Label="crossaccountpermission")
    sqs.expect("get-queue-policy-attribute-delete-first-permission", get_policy(), policy(second))
    sqs.client.remove_permission(QueueUrl=queue, Label="crossaccountpermission2")
    sqs.expect("get-queue-policy-attribute-delete-second-permission", get_policy(), ok())
    sqs.expect(
        "get-queue-policy-attribute-delete-non-existent-label",
        answer(
            lambda: sqs.client.remove_permission(QueueUrl=queue, Label="crossaccountpermission2")
        ),
        invalid_parameter_value(
            "Value crossaccountpermission2 for parameter Label is invalid. "
            "Reason: can't find label."
        ).on(sqs.protocol),
    )


# -- purge and deleted queues -------------------------------------------------------------


@recorded("test_successive_purge_calls_fail", validated="2024-04-30")
@pytest.mark.moto_differs(
    "query errors carry extra message fields and no Detail", protocols=("query",)
)
def test_successive_purge_calls_fail(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.purge_queue(QueueUrl=queue)
    error = answer(lambda: sqs.client.purge_queue(QueueUrl=queue))
    in_progress = Error(
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        "Only one PurgeQueue operation on <resource:1> is allowed every 60 seconds.",
        "PurgeQueueInProgress",
        status=403,
    )
    sqs.expect("purge_queue_error", error, in_progress.on(sqs.protocol))
    assert queue.endswith("/" + sqs.placeholders.bound[("resource", "1")])


@recorded("test_non_existent_queue", validated="2024-04-30")
@pytest.mark.protocols("json")
@pytest.mark.moto_differs("query errors carry extra message fields and no Detail")
def test_non_existent_queue(sqs: Sqs) -> None:
    name = sqs.name()
    queue = sqs.create_queue(name)
    sqs.client.delete_queue(QueueUrl=queue)
    missing = Error(
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
        "QueueDoesNotExist",
    )
    sqs.expect(
        "queue-does-not-exist",
        answer(lambda: sqs.json.get_queue_attributes(QueueUrl=queue)),
        missing.on("json"),
    )
    sqs.expect(
        "queue-does-not-exist-url",
        answer(lambda: sqs.json.get_queue_url(QueueName=name)),
        missing.on("json"),
    )
    # The query protocol words it as SQS always has.
    on_query = Error(missing.code, "The specified queue does not exist for this wsdl version.", "")
    sqs.expect(
        "queue-does-not-exist-query",
        answer(lambda: sqs.query.get_queue_attributes(QueueUrl=queue)),
        on_query.on("query"),
    )


@recorded("test_send_message_via_queue_url_with_json_protocol", validated="2024-04-30")
@pytest.mark.protocols("json")
def test_send_message_via_queue_url_with_json_protocol(sqs: Sqs) -> None:
    from localcloud.sqs.testing import client

    queue = sqs.create_queue()
    # What the PHP SDK does: a JSON request sent to the queue URL instead of the root.
    on_queue_url = client("sqs", queue)
    response = on_queue_url.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    content_type = response["ResponseMetadata"]["HTTPHeaders"]["content-type"]
    assert content_type == "application/x-amz-json-1.0"
    sqs.expect("receive-json-on-queue-url", answer(lambda: response), ok())
