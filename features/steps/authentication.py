"""Steps of authentication.feature: who may call the API, and what a refusal leaves behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import parsers, then, when

from features.steps.common import ScenarioTasks, check_preflight, send_preflight
from harness.drivers import ApiResponse, TaskApi, TaskQueue, TaskStore
from harness.payloads import valid_task
from harness.target import Target

# The header API Gateway names its own errors with.
ERROR_TYPE = "x-amzn-errortype"


@pytest.fixture
def anonymous_api(target: Target) -> Iterator[TaskApi]:
    """The API called without any credentials (an unsigned request)."""
    client = TaskApi(target, who="anonymous")
    yield client
    client.close()


@pytest.fixture
def no_invoke_api(target: Target) -> Iterator[TaskApi]:
    """The API called with a valid key whose policies do not allow execute-api:Invoke."""
    client = TaskApi(target, who="no_invoke")
    yield client
    client.close()


def _error_type(response: ApiResponse) -> str | None:
    return {k.lower(): v for k, v in response.headers.items()}.get(ERROR_TYPE)


@when(parsers.parse('an anonymous client submits a valid task titled "{title}"'))
def anonymous_submits(anonymous_api: TaskApi, tasks: ScenarioTasks, title: str) -> None:
    tasks.add(title, anonymous_api.submit(valid_task(title)))


@when(
    parsers.parse(
        'a client whose credentials may not invoke the API submits a valid task titled "{title}"'
    )
)
def no_invoke_submits(no_invoke_api: TaskApi, tasks: ScenarioTasks, title: str) -> None:
    tasks.add(title, no_invoke_api.submit(valid_task(title)))


@when("an anonymous client looks the task up", target_fixture="lookup")
def anonymous_lookup(anonymous_api: TaskApi, tasks: ScenarioTasks) -> ApiResponse:
    return anonymous_api.get(tasks.accepted_ids()[-1])


@then(parsers.parse('the submission is refused with 403 "{message}"'))
def refused_with(tasks: ScenarioTasks, message: str) -> None:
    response = tasks.last.response
    assert response.status == 403, f"expected API Gateway's 403, got {response.describe()}"
    assert response.json == {"message": message}, response.describe()
    assert _error_type(response) == "MissingAuthenticationTokenException", response.headers


@then(parsers.parse('the lookup is refused with 403 "{message}"'))
def lookup_refused(lookup: ApiResponse, message: str) -> None:
    assert lookup.status == 403, f"expected API Gateway's 403, got {lookup.describe()}"
    assert lookup.json == {"message": message}, lookup.describe()


@then("the submission is refused with 403 as not authorized to perform execute-api:Invoke")
def refused_not_authorized(tasks: ScenarioTasks) -> None:
    response = tasks.last.response
    assert response.status == 403, f"expected API Gateway's 403, got {response.describe()}"
    body = response.json
    assert isinstance(body, dict), response.describe()
    assert list(body) == ["Message"], response.describe()  # capital M, as AWS answers
    message = str(body["Message"])
    assert message.startswith("User: arn:aws:iam::"), message
    assert " is not authorized to perform: execute-api:Invoke on resource: " in message, message
    assert message.endswith("/POST/tasks"), message
    assert _error_type(response) == "AccessDeniedException", response.headers


@then(parsers.parse('no task titled "{title}" was stored'))
def nothing_stored(store: TaskStore, title: str) -> None:
    found = store.find_by_title(title)
    assert not found, f"a refused submission stored tasks: {found}"


@then("the task queue is still empty")
def queue_still_empty(target: Target) -> None:
    depth = TaskQueue(target).depth()
    assert not any(depth.values()), f"a refused submission queued messages: {depth}"


@when("an anonymous browser sends the CORS preflight for POST /tasks", target_fixture="preflight")
def anonymous_preflight(anonymous_api: TaskApi) -> ApiResponse:
    return send_preflight(anonymous_api)


@then("the preflight allows the API's methods and headers")
def preflight_allows(preflight: ApiResponse) -> None:
    check_preflight(preflight)
