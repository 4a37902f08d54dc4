"""Each function's role allows exactly what its code calls: nothing missing, nothing unused.

The check reads what the features did: in a session that also ran every feature scenario
and saw them pass (``make test``), it runs after them (the root ``conftest.py`` orders it)
and reads their own local stack; alone, it runs the features against this module's own
local stack (a subprocess of ``pytest features --outputs``, leaving out the monitoring
scenarios, which only wait out alarm windows). Every function's workers sign with
credentials of their own, so the local cloud records each ``(role, action, resource)``
used (``localcloud.identity``): the functions' own AWS calls, the event source
mapping's receives and deletes, the log shipping. The roles' statements are read back from
IAM as the CloudFormation engine created them, with every intrinsic resolved.
Then, per role:

- **missing**: a call no statement allows (the local cloud refused it with AccessDenied,
  as AWS would, so a feature failed too);
- **unused**: an (action, resource) a statement allows that nothing used.

Both are judged by the evaluator the local cloud enforces (``localcloud.iam_policy``).

Only ``xray:PutTelemetryRecords`` cannot be observed here (the X-Ray daemon's own
counters are not emulated; its uploads of the traces with the role are), and is listed as
such.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdk import contract
from cdk.node import env_with_node
from features.session import FEATURES_LOCAL_STACK, whole_feature_run_passed
from harness.local_stack.cloud import LocalDeployment
from harness.target import Target
from localcloud.iam_policy import PolicySet
from localcloud.identity import Call

# Used with the role by the X-Ray daemon for its own counters, which are not emulated (its
# uploads of the functions' segments, xray:PutTraceSegments, are: localcloud/xray.py).
NOT_OBSERVABLE_LOCALLY = frozenset({"xray:PutTelemetryRecords"})
REPO = Path(__file__).resolve().parents[2]


def _statements(target: Target, role_arn: str) -> list[dict[str, Any]]:
    iam = target.client("iam")
    role_name = role_arn.rsplit("/", 1)[-1]
    statements: list[dict[str, Any]] = []
    for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements.extend(document["Statement"])
    assert not iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    return statements


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource pattern) the role's Allow statements grant."""
    grants: set[tuple[str, str]] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                grants.add((str(action), str(resource)))
    return grants


def _allows(policy: PolicySet, call: Call) -> bool:
    """The local cloud's own IAM evaluation (the one enforced on the functions' calls)."""
    return policy.decide(call.action, call.resource).allowed


def _grant_policy(grant: tuple[str, str]) -> PolicySet:
    action, resource = grant
    return PolicySet([{"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}])


def _stack_the_features_ran_on(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[LocalDeployment, Target]:
    """The features' own stack if this session ran every scenario on it and they all
    passed; else a stack of this module's own, with the features run against it now
    (every feature but the monitoring ones, which only wait out alarm windows)."""
    stack = whole_feature_run_passed(request.session)
    if stack is not None:
        print("\nreading the AWS calls of this session's feature run")
        return stack, Target.from_outputs_file(stack.outputs_file, "local")
    if request.session.config.stash.get(FEATURES_LOCAL_STACK, None) is not None:
        # The features' stack still runs in this process (moto's state is per process, so a
        # second stack of the same names cannot deploy beside it), and its run was partial
        # or failed: their own tests report that; the roles are judged on a passing run.
        pytest.skip("the features ran in this process and did not all pass: nothing to judge")
    local_stack: LocalDeployment = request.getfixturevalue("local_stack")
    features = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "--outputs",
            str(local_stack.outputs_file),
            "--report-dir",
            str(tmp_path / "reports"),
            "-m",
            "not monitoring",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=REPO,
        env=env_with_node(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert features.returncode == 0, f"the features failed:\n{features.stdout[-4000:]}"
    return local_stack, request.getfixturevalue("target")


@pytest.mark.timeout(1800)
def test_each_role_allows_exactly_what_its_function_calls(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    local_stack, target = _stack_the_features_ran_on(request, tmp_path)
    lam = target.client("lambda")
    report = []
    problems = []
    for output_key in (contract.API_FUNCTION_NAME, contract.PROCESSOR_FUNCTION_NAME):
        function = lam.get_function_configuration(FunctionName=target.output(output_key))
        role = function["Role"]
        statements = _statements(target, role)
        grants = _grants(statements)
        policy = PolicySet([{"Statement": statements}])
        calls = local_stack.endpoint.access.calls(role)
        assert calls, f"nothing was recorded for {function['FunctionName']}"
        missing = [(c.action, c.resource) for c in calls if not _allows(policy, c)]
        unused = sorted(
            g
            for g in grants
            if g[0] not in NOT_OBSERVABLE_LOCALLY
            and not any(_allows(_grant_policy(g), c) for c in calls)
        )
        report.append(
            f"{function['FunctionName']}: {len(calls)} distinct calls, grants {sorted(grants)}"
        )
        if missing:
            problems.append(
                f"{function['FunctionName']} calls what its role does not allow: {missing}"
            )
        if unused:
            problems.append(
                f"{function['FunctionName']}'s role allows what nothing calls: {unused}"
            )
    print("\n" + "\n".join(report))
    assert not problems, "\n".join(problems)
