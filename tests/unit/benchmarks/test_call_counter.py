"""The local stack benchmark's count of AWS calls per task, read off the local cloud's
access record (``benchmarks/local_stack_bench.py``), against a real ``AccessLog``."""

from __future__ import annotations

from collections import Counter

from benchmarks.local_stack_bench import AwsCallCounter, at_minimum, calls_of, per_task
from localcloud.identity import AccessLog, Principal

API = Principal("api-fn", "arn:aws:iam::123456789012:role/api")
PROCESSOR = Principal("processor-fn", "arn:aws:iam::123456789012:role/processor")
TABLE = b'{"TableName": "tasks"}'


def _request(access: AccessLog, principal: Principal, operation: str) -> None:
    access.record_request(
        principal, target=f"DynamoDB_20120810.{operation}", service="dynamodb",
        form=dict, body=TABLE,
    )  # fmt: skip


def test_counts_each_functions_own_calls_apart_from_the_services() -> None:
    access = AccessLog("us-east-1", "123456789012", enforce=False)  # counting, not IAM
    counter = AwsCallCounter(access)
    before = counter.snapshot()
    for _ in range(2):
        _request(access, API, "PutItem")
        _request(access, API, "UpdateItem")
    _request(access, PROCESSOR, "UpdateItem")
    # What the local cloud does with the processor's role (the event source mapping).
    access.check(PROCESSOR, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:q")
    after = counter.snapshot()

    api = calls_of(before, after, "api-fn")
    assert api == Counter({"PutItem": 2, "UpdateItem": 2})
    assert at_minimum(api, 2, ("PutItem", "UpdateItem"))
    assert not at_minimum(api, 1, ("PutItem", "UpdateItem"))
    assert not at_minimum(api, 2, ("PutItem",)), "an operation beyond the minimum"
    # 200 accepted tasks whose calls include a timed-out request's extra PutItem call.
    near = Counter({"PutItem": 201, "UpdateItem": 200})
    assert at_minimum(near, 200, ("PutItem", "UpdateItem"), tolerance=0.01)
    assert not at_minimum(near, 200, ("PutItem", "UpdateItem"))
    far = Counter({"PutItem": 203, "UpdateItem": 200})
    assert not at_minimum(far, 200, ("PutItem", "UpdateItem"), tolerance=0.01)
    assert per_task(api, 2) == "2.00 per task (PutItem 1.00, UpdateItem 1.00)"
    assert calls_of(before, after, "processor-fn") == Counter({"UpdateItem": 1})
    assert calls_of(before, after, "processor-fn", own=False) == Counter({"ReceiveMessage": 1})
    # The access record itself still records every call (its own behaviour unchanged).
    assert {c.action for c in access.calls(PROCESSOR.role_arn)} == {
        "dynamodb:UpdateItem",
        "sqs:ReceiveMessage",
    }


def test_close_gives_the_access_record_its_methods_back() -> None:
    access = AccessLog("us-east-1", "123456789012", enforce=False)  # counting, not IAM
    counter = AwsCallCounter(access)
    counter.close()
    _request(access, API, "GetItem")
    assert counter.snapshot() == Counter()
    assert "check" not in vars(access)
    assert "record_request" not in vars(access)
