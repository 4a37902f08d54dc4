"""Cold start of the two Lambda handlers (issue 19): import-and-init time next to ``import boto3``.

    .venv/bin/python benchmarks/cold_start_bench.py [--samples 9] [--tracing-disabled]
        [--as-bundled]

Each sample is a fresh interpreter (``python -c``) with the environment a Lambda worker
has (``AWS_LAMBDA_FUNCTION_NAME``, ``LAMBDA_TASK_ROOT``, the function's variables as the
CDK app sets them, tracing on as on AWS), so Powertools and the X-Ray SDK take their
Lambda paths. It times, inside the interpreter:

- **init**: ``import handlers.api`` / ``import handlers.processor`` (what Lambda's init
  phase runs: the module body, Powertools' Logger/Tracer/Metrics, the resolver);
- **first use**: what the first request adds before its first AWS call (settings and the
  boto3 clients, built on first use; for the API also two requests answered without an AWS
  call, a 400 each, as the resolver builds its routes' validation on first use);

and, side by side in the same run, ``import boto3`` alone (which the Lambda runtime
provides and every handler needs). The targets are in the rows: init <= 250 ms each on
this machine. The samples of the three rows are interleaved, so a busy spell of the shared
machine lands on all of them alike; the load average is printed with the figures.

``--as-bundled`` runs the handlers from the packages as the Lambda asset ships them
(``cdk/bundling.py`` installs with ``--no-compile`` and drops every ``.pyc``, and
``/var/task`` is read-only on Lambda): each of them is compiled from source at every cold
start. The runtime's own boto3 and the standard library keep their bytecode, as on AWS.
``--tracing-disabled`` runs them as the local stack's workers do
(``POWERTOOLS_TRACE_DISABLED``).

The number of modules each row loads is printed too: a figure that does not depend on how
busy the machine is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 250.0

# What the CDK app gives each function (cdk/stacks.py); the values are placeholders, as
# nothing here calls AWS.
_COMMON = {
    "POWERTOOLS_METRICS_NAMESPACE": "TaskApi",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "TASKS_TABLE_NAME": "tasks",
}
FUNCTION_ENVIRONMENT: dict[str, dict[str, str]] = {
    "handlers.api": {
        **_COMMON,
        "POWERTOOLS_SERVICE_NAME": "task-api",
        "IDEMPOTENCY_TABLE_NAME": "idempotency",
        "TASK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/tasks.fifo",
        "PENDING_WINDOW_SECONDS": "30",
    },
    "handlers.processor": {
        **_COMMON,
        "POWERTOOLS_SERVICE_NAME": "task-processor",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq.fifo",
        "ATTEMPT_BUDGET": "3",
    },
}

# Runs in the fresh interpreter: {module} is imported, then what a first request adds before
# its first AWS call is done: its services built (settings, boto3 clients) and, for the API,
# two requests answered without any AWS call (a POST whose body fails validation, a GET of
# a malformed id: the resolver builds its routes' validation on first use). Prints the
# milliseconds of each and the modules loaded.
_CHILD = """
import sys, time, json
loaded = len(sys.modules)
start, start_cpu = time.perf_counter(), time.process_time()
import {module} as target
init, init_cpu = time.perf_counter(), time.process_time()
modules = len(sys.modules) - loaded
services = getattr(target, "_services", None)
if services is not None:
    services()
if {module!r} == "handlers.api":
    sys.path.append({repo!r})  # the tests' event factory (standard library only)
    from tests.unit.handlers.handler_tests.events import FakeLambdaContext, api_event
    for event in (api_event("POST", "/tasks", json_body={{}}), api_event("GET", "/tasks/x")):
        answer = target.handler(event, FakeLambdaContext())
        assert answer["statusCode"] == 400, answer
done = time.perf_counter()
print(json.dumps({{"init_ms": (init - start) * 1000, "init_cpu_ms": (init_cpu - start_cpu) * 1000,
                  "first_use_ms": (done - init) * 1000, "modules": modules}}))
"""

ROWS = ("boto3", "handlers.api", "handlers.processor")


@dataclass
class Row:
    """The samples of one row."""

    module: str
    init_ms: list[float]
    init_cpu_ms: list[float]
    first_use_ms: list[float]
    modules: int = 0


def lambda_environment(module: str, code_path: str, tracing: bool, bundled: bool) -> dict[str, str]:
    """The environment a Lambda worker of ``module``'s function has (not ours)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_FUNCTION_NAME": module.replace(".", "-"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "LAMBDA_TASK_ROOT": code_path,
        # No X-Ray daemon here: segments go nowhere, quietly.
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "PYTHONPATH": code_path,
        **FUNCTION_ENVIRONMENT.get(module, {}),
    }
    if not tracing:
        env.update({"POWERTOOLS_TRACE_DISABLED": "true", "AWS_XRAY_SDK_ENABLED": "false"})
    if bundled:
        # /var/task is read-only on Lambda: nothing compiled there is kept.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _bundled_packages() -> list[str]:
    """The distributions the Lambda asset ships: handlers/requirements.txt's pins, less
    what the bundler removes (the runtime provides them)."""
    names = []
    for line in (REPO_ROOT / "handlers" / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            names.append(requirement.split("==", 1)[0].split("[", 1)[0])
    provided = {"boto3", "botocore", "s3transfer"}
    return [name for name in names if name not in provided]


@contextlib.contextmanager
def _code_dir(bundled: bool) -> Iterator[str]:
    """The repository (bytecode cached as usual), or a copy of the handlers and their
    bundled packages without any bytecode, as the Lambda asset has them."""
    if not bundled:
        yield str(REPO_ROOT)
        return
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        root = Path(tmp)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO_ROOT / "handlers", root / "handlers", ignore=ignore)
        for name in _bundled_packages():
            dist = importlib.metadata.distribution(name)
            for file in dist.files or []:
                if file.suffix == ".pyc" or "__pycache__" in file.parts:
                    continue
                source = Path(str(dist.locate_file(file))).resolve()
                if not source.is_file() or file.parts[0].endswith((".dist-info", "..")):
                    continue
                target = root / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        yield str(root)


def _sample(module: str, env: dict[str, str]) -> dict[str, float]:
    # -P: the current directory stays off sys.path (the Lambda runtime's workers start so
    # too); the code comes from PYTHONPATH alone.
    result = subprocess.run(
        [sys.executable, "-P", "-c", _CHILD.format(module=module, repo=str(REPO_ROOT))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{result.stderr}")
    sample: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return sample


def measure(samples: int, *, tracing: bool, bundled: bool) -> list[Row]:
    """``samples`` fresh interpreters per row, the rows interleaved; one untimed warm-up
    round first (the page cache and, outside ``--as-bundled``, the bytecode cache)."""
    rows = {module: Row(module, [], [], []) for module in ROWS}
    with _code_dir(bundled) as code_path:
        envs = {module: lambda_environment(module, code_path, tracing, bundled) for module in ROWS}
        for round_no in range(samples + 1):
            for module in ROWS:
                sample = _sample(module, envs[module])
                if round_no == 0:
                    continue
                row = rows[module]
                row.init_ms.append(sample["init_ms"])
                row.init_cpu_ms.append(sample["init_cpu_ms"])
                row.first_use_ms.append(sample["first_use_ms"])
                row.modules = int(sample["modules"])
    return list(rows.values())


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} ms ({min(values):.0f}-{max(values):.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=9, help="interpreters per row")
    parser.add_argument(
        "--tracing-disabled", action="store_true", help="as the local stack's workers run them"
    )
    parser.add_argument(
        "--as-bundled",
        action="store_true",
        help="the handlers' packages without bytecode, as the Lambda asset ships them",
    )
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    load_before = os.getloadavg()[0]
    rows = measure(args.samples, tracing=not args.tracing_disabled, bundled=args.as_bundled)
    load_after = os.getloadavg()[0]
    mode = "tracing off" if args.tracing_disabled else "tracing on"
    if args.as_bundled:
        mode += ", sources as bundled (no bytecode)"
    print(
        f"cold start, {args.samples} fresh interpreters per row ({mode}); "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load average {load_before:.2f} -> {load_after:.2f}, Python {sys.version.split()[0]}"
    )
    boto3_ms = statistics.median(rows[0].init_ms)
    print(
        f"{'':20} {'init, median (min-max)':>26} {'x boto3':>8} {'CPU':>7} {'modules':>8} "
        f"{'first use':>10}"
    )
    for row in rows:
        init = statistics.median(row.init_ms)
        label, verdict, first_use = "import boto3", "", ""
        if row.module != "boto3":
            label = row.module
            verdict = "  target <= 250 ms: " + ("met" if init <= TARGET_MS else "MISSED")
            first_use = f"{statistics.median(row.first_use_ms):7.0f} ms"
        print(
            f"{label:20} {_spread(row.init_ms):>26} {init / boto3_ms:8.2f} "
            f"{statistics.median(row.init_cpu_ms):4.0f} ms {row.modules:8d} "
            f"{first_use:>10}{verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
