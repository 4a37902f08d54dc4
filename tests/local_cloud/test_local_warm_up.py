"""The local stack's warm-up (``localcloud.warm``): it takes the first start's one-time
work off the start, and leaves nothing behind that a start or a user could see.

Each test runs in a fresh interpreter: what is imported, and what moto holds, is
per process, and this test process has long imported moto.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from localcloud.cfn.testing import template, write_assembly

ROOT = Path(__file__).resolve().parents[2]

# Every kind of call a first deployment makes to moto: a table with default encryption
# (moto creates its KMS key), a log group, a role with an AWS managed policy moto does not
# know (an expected error response), an alarm.
RESOURCES = {
    "Table": {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
        },
    },
    "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
    "Role": {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "ManagedPolicyArns": [
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
        },
    },
    "Alarm": {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    },
}

# The packages whose first use made the first start slow.
HEAVY = ("moto", "flask", "werkzeug", "boto3", "botocore", "localcloud")
# Imported lazily on a first request, a few ms in all: not worth naming in the warm-up.
NEGLIGIBLE = (
    "moto.iam.access_control",
    "moto.iam.policy_conditions",
    "moto.sts",
    "flask.debughelpers",
)


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def _run(script: str) -> Any:
    """Run ``script`` in a fresh interpreter at the repo root; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"script failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_the_warm_up_a_first_start_loads_no_heavy_module(tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path / "assembly", {"warm-Stack": template(RESOURCES)})
    new_modules = _run(
        f"""
        import json, sys
        from pathlib import Path
        from harness.local_stack.cloud import LocalDeployment, _warm_up

        _warm_up()
        before = set(sys.modules)
        with LocalDeployment(assembly_dir=Path({str(assembly)!r})) as stack:
            assert stack.outputs is not None
            loaded = sorted(set(sys.modules) - before)
        print(json.dumps(loaded))
        """
    )
    heavy = [name for name in new_modules if _under(name, HEAVY) and not _under(name, NEGLIGIBLE)]
    assert heavy == [], f"the first start still imported: {heavy}"


def test_the_warm_up_creates_nothing_a_client_can_see() -> None:
    seen = _run(
        """
        import json
        import boto3
        from localcloud.endpoint import AwsEndpoint
        from localcloud.warm import warm_up

        warm_up("us-east-1")
        warm_up("us-east-1")  # once per process: the second call is a no-op
        with AwsEndpoint() as endpoint:
            def client(service):
                return boto3.client(
                    service, endpoint_url=endpoint.url, region_name="us-east-1",
                    aws_access_key_id="t", aws_secret_access_key="t",
                )
            seen = {
                "tables": client("dynamodb").list_tables()["TableNames"],
                "log_groups": client("logs").describe_log_groups()["logGroups"],
                "roles": client("iam").list_roles()["Roles"],
                "policies": client("iam").list_policies(Scope="Local")["Policies"],
                "alarms": client("cloudwatch").describe_alarms()["MetricAlarms"],
                "dashboards": client("cloudwatch").list_dashboards()["DashboardEntries"],
                "keys": client("kms").list_keys()["Keys"],
                "queues": client("sqs").list_queues().get("QueueUrls", []),
            }
        print(json.dumps(seen, default=str))
        """
    )
    assert seen == {name: [] for name in seen}
