"""The real CDK app (``cdk/``), ephemeral profile, deployed by the local CloudFormation engine
with recording services: every resource type it uses is supported and the specs hold up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdk import contract
from cdk.synth import synthesize
from localcloud.cfn import SUPPORTED_TYPES, CloudAssembly, DeployedAssembly, deploy_assembly
from localcloud.cfn.testing import REGION, RecordingServices, client, local_endpoint

PREFIX = "cfnlocal"
LOCAL_API_URL_PREFIX = "http://127.0.0.1:4567/"  # RecordingServices.add_rest_api


@pytest.fixture(scope="session")
def real_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        "ephemeral", tmp_path_factory.mktemp("real-cdk-out"), {"stack_prefix": PREFIX}
    )


@dataclass
class RealDeployment:
    deployed: DeployedAssembly
    services: RecordingServices
    endpoint: str
    cpu_seconds: float


@pytest.fixture(scope="module")
def real(real_assembly: Path) -> Iterator[RealDeployment]:
    services = RecordingServices()
    with local_endpoint() as url:
        cpu = time.process_time()
        deployment = deploy_assembly(
            real_assembly, endpoint_url=url, region=REGION, services=services
        )
        # CPU time of this process (engine and in-process endpoint): unlike the wall
        # time, it hardly depends on what else the shared machine is running.
        cpu_seconds = time.process_time() - cpu
        print(  # the figure the local stack's start-time budget depends on
            f"real assembly: {sum(len(s.resources) for s in deployment.stacks)} resources "
            f"deployed in {deployment.deploy_seconds:.3f}s ({cpu_seconds:.3f}s CPU); types: "
            f"{', '.join(sorted(deployment.resource_types))}"
        )
        with deployment:
            yield RealDeployment(deployment, services, url, cpu_seconds)


def _template_types(assembly_dir: Path) -> set[str]:
    assembly = CloudAssembly.load(assembly_dir)
    return {
        str(resource["Type"])
        for stack in assembly.stacks
        for resource in (stack.template.get("Resources") or {}).values()
    }


def test_every_resource_type_of_the_real_app_is_supported(real_assembly: Path) -> None:
    unsupported = _template_types(real_assembly) - SUPPORTED_TYPES
    assert not unsupported, f"the local cloud cannot deploy {sorted(unsupported)}"


def test_the_real_app_deploys_every_resource(real_assembly: Path, real: RealDeployment) -> None:
    deployment = real.deployed
    assert deployment.resource_types == _template_types(real_assembly)
    assert [stack.name for stack in deployment.stacks] == [
        f"{PREFIX}-Queue",
        f"{PREFIX}-Api",
        f"{PREFIX}-Monitoring",
    ]
    # The local stack must start in < 2 s after synthesis; the deployment is a part of it.
    assert real.cpu_seconds < 1.5


def test_outputs_follow_the_contract(real: RealDeployment) -> None:
    deployment, url = real.deployed, real.endpoint
    outputs = contract.flatten(deployment.outputs)
    assert set(contract.REQUIRED_OUTPUTS) <= set(outputs)
    assert outputs[contract.API_URL].startswith(LOCAL_API_URL_PREFIX)
    assert outputs[contract.API_URL].endswith("/")
    queue_urls = client(url, "sqs").list_queues(QueueNamePrefix=PREFIX).get("QueueUrls", [])
    assert outputs[contract.TASK_QUEUE_URL] in queue_urls
    assert outputs[contract.DEAD_LETTER_QUEUE_URL] in queue_urls
    tables = client(url, "dynamodb").list_tables()["TableNames"]
    assert outputs[contract.TASKS_TABLE_NAME] in tables
    # No intrinsic function or AWS-only endpoint survives into the outputs.
    text = json.dumps(deployment.outputs)
    assert "Fn::" not in text
    assert "execute-api" not in text


def test_specs_are_complete_and_point_at_real_code(real: RealDeployment) -> None:
    deployment, services = real.deployed, real.services
    outputs = contract.flatten(deployment.outputs)
    functions = services.specs("add_function")
    assert len(functions) >= 2
    for spec in functions:
        module = spec.handler.rsplit(".", 1)[0].replace(".", "/")
        assert (spec.code_dir / f"{module}.py").is_file(), f"{spec.handler} not in {spec.code_dir}"
        assert spec.runtime.startswith("python")
        assert spec.log_group_name
        for key, value in spec.environment.items():
            assert "Fn::" not in value, f"{key}={value} is unresolved"
            assert "${" not in value, f"{key}={value} is unresolved"
    (mapping,) = services.specs("add_event_source_mapping")
    assert mapping.queue_url == outputs[contract.TASK_QUEUE_URL]
    assert "ReportBatchItemFailures" in mapping.function_response_types
    (api,) = services.specs("add_rest_api")
    routes = {(m.resource_path, m.http_method) for m in api.methods}
    assert {("/tasks", "POST"), ("/tasks", "OPTIONS")} <= routes
    alarms = services.specs("add_alarm")
    assert len(alarms) >= 3
