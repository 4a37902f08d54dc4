"""What importing a handler loads, as Lambda imports it (its environment, tracing on).

Machine-independent guards for the cold start (``benchmarks/cold_start_bench.py`` prints
the times): the X-Ray tracer still patches botocore, so every AWS call stays traced, and
nothing is imported that no request uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cold_start_bench import lambda_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
# Libraries the X-Ray SDK would patch if asked to patch everything; no handler uses them.
UNUSED = frozenset({"requests", "sqlite3", "httpx", "pymongo", "psycopg2", "pynamodb"})
# Siblings that Powertools' re-exporting packages would import with the two modules the
# handlers use (handlers.lazy_packages): other resolvers, other event sources.
UNUSED_POWERTOOLS = frozenset(
    {
        "aws_lambda_powertools.event_handler.appsync",
        "aws_lambda_powertools.event_handler.bedrock_agent",
        "aws_lambda_powertools.event_handler.vpc_lattice",
        "aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event",
        "aws_lambda_powertools.utilities.data_classes.cognito_user_pool_event",
    }
)

# The processor's own modules: the API answers no request with them.
PROCESSOR_ONLY = frozenset(
    {"handlers.domain.processing", "handlers.adapters.ledger", "handlers.adapters.failures"}
)

_CHILD = """
import json, sys
import {module}
import wrapt
from botocore.client import BaseClient
print(json.dumps({{
    # The X-Ray SDK's botocore patch wraps this method (wrapt) to record a subsegment.
    "botocore_traced": isinstance(BaseClient.__dict__["_make_api_call"], wrapt.FunctionWrapper),
    "modules": sorted(sys.modules),
}}))
"""


@pytest.mark.parametrize("module", ["handlers.api", "handlers.processor"])
def test_a_handler_traces_its_aws_calls_and_imports_nothing_unused(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-c", _CHILD.format(module=module)],
        env=lambda_environment(module, str(REPO_ROOT), tracing=True, bundled=False),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["botocore_traced"], "the tracer no longer patches botocore: AWS calls untraced"
    assert not UNUSED & {name.split(".")[0] for name in loaded["modules"]}, "used by no request"
    assert not UNUSED_POWERTOOLS & set(loaded["modules"]), "imported at init, used by no request"
    if module == "handlers.api":
        assert not PROCESSOR_ONLY & set(loaded["modules"]), "the processor's code at the API's init"
