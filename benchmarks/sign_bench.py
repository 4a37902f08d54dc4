"""CPU cost of signing one API request (SigV4 with botocore, as every client does).

    .venv/bin/python benchmarks/sign_bench.py [COUNT]

Signs COUNT ``POST /tasks`` requests with a typical task body through
:class:`harness.api_auth.ApiSigner` (what the features' driver, the locust users, the
fuzzer and ``post_tasks.py`` use), then has the local API Gateway's
:class:`localcloud.apigw.iam_auth.IamAuthorizer` check each (signature recomputed,
policy evaluated with moto's ``IAMPolicy``; the key lookup is a dict there), then times
the key lookup in moto's IAM on its own, and prints the CPU time per request of each, so
what the API's IAM authorization costs a client and the local gateway is a measured
figure (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.api_auth import ApiCredentials, ApiSigner
from localcloud.apigw.iam_auth import Caller, IamAuthorizer, KnownKey, SignedRequest

URL = "http://127.0.0.1:4567/ephemeral/tasks"
BODY = json.dumps(
    {"title": "Prepare the quarterly report", "description": "x" * 200, "priority": "medium"}
)


class _OneKey:
    """A credential store holding one key (no moto lookup in the measured loop)."""

    def __init__(self, key: KnownKey) -> None:
        self.key = key

    def lookup(self, access_key_id: str, session_token: str | None) -> KnownKey | None:
        return self.key


def _moto_lookup_us(count: int) -> float:
    """CPU microseconds of the gateway's key lookup in the local cloud's IAM (moto, four
    users with an inline policy each, as many as a local stack has and then some)."""
    from localcloud import AwsEndpoint, local_client
    from localcloud.apigw.iam_auth import MotoCredentials

    endpoint = AwsEndpoint(port=0)
    endpoint.start()
    try:
        iam = local_client("iam", endpoint.url, endpoint.region)
        document = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"
        }]})  # fmt: skip
        key = ""
        for index in range(4):
            iam.create_user(UserName=f"bench-{index}")
            iam.put_user_policy(UserName=f"bench-{index}", PolicyName="p", PolicyDocument=document)
            key = iam.create_access_key(UserName=f"bench-{index}")["AccessKey"]["AccessKeyId"]
        store = MotoCredentials("123456789012", endpoint.region)
        if store.lookup(key, None) is None:
            raise SystemExit("moto does not know the key just created: the benchmark is broken")
        cpu = time.process_time()
        for _ in range(count):
            store.lookup(key, None)
        return (time.process_time() - cpu) / count * 1e6
    finally:
        endpoint.stop()


def main(argv: list[str]) -> int:
    """Sign ``argv[0]`` (default 20000) requests and check a quarter as many; print the
    CPU microseconds per request of each."""
    count = int(argv[0]) if argv else 20_000
    signer = ApiSigner(ApiCredentials("AKIAEXAMPLE000000000", "example-secret"), "us-east-1")
    for _ in range(200):  # warm: imports, first-call caches
        signer.headers("POST", URL, BODY)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        signer.headers("POST", URL, BODY)
    sign_us = (time.process_time() - cpu) / count * 1e6
    sign_wall_us = (time.perf_counter() - wall) / count * 1e6

    statement = {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:api/*",
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    caller = Caller("arn:aws:iam::123456789012:user/u", "AKIAEXAMPLE000000000", "123456789012", "u")
    authorizer = IamAuthorizer(
        _OneKey(KnownKey(caller, "example-secret", None, (policy,))),
        region="us-east-1",
        account_id="123456789012",
        api_id="api",
        stage="ephemeral",
    )
    headers = {"Host": "127.0.0.1:4567", **signer.headers("POST", URL, BODY)}
    request = SignedRequest("POST", "/ephemeral/tasks", list(headers.items()), BODY.encode())
    if authorizer.check(request, "/tasks") != caller:
        raise SystemExit("the gateway refused the signed request: the benchmark is broken")
    checks = max(count // 4, 1)
    cpu = time.process_time()
    for _ in range(checks):
        authorizer.check(request, "/tasks")
    check_us = (time.process_time() - cpu) / checks * 1e6
    lookup_us = _moto_lookup_us(checks)
    figures = {
        "requests_signed": count,
        "sign_cpu_us": round(sign_us, 1),
        "sign_wall_us": round(sign_wall_us, 1),
        "requests_checked": checks,
        "gateway_check_cpu_us": round(check_us, 1),
        "moto_key_lookup_cpu_us": round(lookup_us, 1),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
