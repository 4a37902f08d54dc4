"""Cold start of the two Lambda handlers (issue 19): import-and-init time next to ``import boto3``.

    .venv/bin/python benchmarks/cold_start_bench.py [--samples 9] [--tracing-disabled]
        [--as-bundled] [--compare REF]

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
When a CPython 3.12 (the Lambda runtime's version) is found
(:func:`cdk.bundling.find_lambda_python`), ``--as-bundled`` runs the real asset
(:func:`cdk.bundling.build_lambda_asset`) under it instead, with boto3 from a 3.12
virtualenv of its own under ``build/`` (the pinned boto3/botocore, compiled, as the
runtime's are): rows for the asset as built (bytecode compiled at bundling) and for the
same asset with its bytecode removed (as it shipped before), side by side.
``--tracing-disabled`` runs them as the local stack's workers do
(``POWERTOOLS_TRACE_DISABLED``).

``--compare REF`` adds rows for the handlers of the git revision ``REF`` (``handlers/``
exported into a temporary directory, the same dependencies), interleaved with this tree's:
a before/after of an import-time change in one run.

The number of modules each row loads is printed too: a figure that does not depend on how
busy the machine is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
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

MODULES = ("boto3", "handlers.api", "handlers.processor")


@dataclass
class Row:
    """The samples of one row: ``module`` imported from ``code_path`` by ``python``."""

    label: str
    module: str
    code_path: str
    python: str
    bundled: bool
    init_ms: list[float] = field(default_factory=list)
    init_cpu_ms: list[float] = field(default_factory=list)
    first_use_ms: list[float] = field(default_factory=list)
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


def _sample(module: str, env: dict[str, str], python: str = sys.executable) -> dict[str, float]:
    # -P: the current directory stays off sys.path (the Lambda runtime's workers start so
    # too); the code comes from PYTHONPATH alone.
    result = subprocess.run(
        [python, "-P", "-c", _CHILD.format(module=module, repo=str(REPO_ROOT))],
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


def measure(rows: list[Row], samples: int, *, tracing: bool) -> list[Row]:
    """``samples`` fresh interpreters per row, the rows interleaved; one untimed warm-up
    round first (the page cache and, where bytecode may be written, the bytecode cache)."""
    envs = [lambda_environment(r.module, r.code_path, tracing, r.bundled) for r in rows]
    for round_no in range(samples + 1):
        for row, env in zip(rows, envs, strict=True):
            sample = _sample(row.module, env, row.python)
            if round_no == 0:
                continue
            row.init_ms.append(sample["init_ms"])
            row.init_cpu_ms.append(sample["init_cpu_ms"])
            row.first_use_ms.append(sample["first_use_ms"])
            row.modules = int(sample["modules"])
    return rows


@contextlib.contextmanager
def _handlers_at(revision: str) -> Iterator[str]:
    """A directory holding ``handlers/`` as of the git revision ``revision``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "handlers"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="cold-start-ref-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield tmp


LAMBDA_VENV = REPO_ROOT / "build" / "cold-start-py312"


def _runtime_python(lambda_python: Path) -> str:
    """A virtualenv of ``lambda_python`` with the pinned boto3 and botocore (compiled, as the
    Lambda runtime's are), made once under ``build/``."""
    python = LAMBDA_VENV / "bin" / "python"
    pins = [
        line.split("#", 1)[0].strip()
        for line in (REPO_ROOT / "requirements" / "dev.txt").read_text().splitlines()
        if line.startswith(("boto3==", "botocore==", "s3transfer==", "jmespath==",
                            "python-dateutil==", "six==", "urllib3=="))
    ]  # fmt: skip
    stamp = LAMBDA_VENV / "pins.txt"
    if not python.exists() or not stamp.exists() or stamp.read_text() != "\n".join(pins):
        subprocess.run([str(lambda_python), "-m", "venv", "--clear", str(LAMBDA_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", *pins],
            check=True,
        )  # fmt: skip
        stamp.write_text("\n".join(pins))
    return str(python)


@contextlib.contextmanager
def _asset_without_bytecode(asset: Path) -> Iterator[str]:
    """A copy of the built asset with every ``.pyc`` left out (as it shipped before)."""
    with tempfile.TemporaryDirectory(prefix="cold-start-nopyc-") as tmp:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(asset, Path(tmp) / "task", ignore=ignore, symlinks=True)
        yield str(Path(tmp) / "task")


@contextlib.contextmanager
def planned_rows(*, bundled: bool, compare: str | None) -> Iterator[tuple[list[Row], str]]:
    """The rows to measure (their code directories alive meanwhile) and what they run."""
    with contextlib.ExitStack() as stack:
        handlers = MODULES[1:]
        if bundled:
            sys.path.insert(0, str(REPO_ROOT))
            from cdk.bundling import build_lambda_asset, find_lambda_python

            lambda_python = find_lambda_python()
            if lambda_python is not None:
                python = _runtime_python(lambda_python)
                asset = str(build_lambda_asset(lambda_python=lambda_python).path)
                bare = stack.enter_context(_asset_without_bytecode(Path(asset)))
                rows = [Row("import boto3", "boto3", asset, python, True)]
                rows += [Row(f"{m} (pyc)", m, asset, python, True) for m in handlers]
                rows += [Row(f"{m} (no pyc)", m, bare, python, True) for m in handlers]
                version = subprocess.run(
                    [python, "-c", "import sys; print(sys.version.split()[0])"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip
                yield rows, f"the built Lambda asset, Python {version} ({lambda_python})"
                return
            code = stack.enter_context(_code_dir(True))
            what = f"sources as bundled (no bytecode), Python {sys.version.split()[0]}"
        else:
            code, what = str(REPO_ROOT), f"this tree, Python {sys.version.split()[0]}"
        rows = [Row(m if m != "boto3" else "import boto3", m, code, sys.executable, bundled)
                for m in MODULES]  # fmt: skip
        if compare is not None:
            ref = stack.enter_context(_handlers_at(compare))
            rows += [Row(f"{m} @{compare}", m, ref, sys.executable, False) for m in handlers]
            what += f"; rows @{compare}: the handlers of {compare}"
        yield rows, what


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
        help="the handlers' packages as the Lambda asset ships them",
    )
    parser.add_argument(
        "--compare", metavar="REF", help="also the handlers of this git revision, interleaved"
    )
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.compare and args.as_bundled:
        parser.error("--compare and --as-bundled exclude each other")
    load_before = os.getloadavg()[0]
    with planned_rows(bundled=args.as_bundled, compare=args.compare) as (rows, what):
        measure(rows, args.samples, tracing=not args.tracing_disabled)
    load_after = os.getloadavg()[0]
    mode = "tracing off" if args.tracing_disabled else "tracing on"
    print(
        f"cold start, {args.samples} fresh interpreters per row ({mode}; {what}); "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load average {load_before:.2f} -> {load_after:.2f}"
    )
    boto3_ms = statistics.median(rows[0].init_ms)
    boto3_cpu = statistics.median(rows[0].init_cpu_ms)
    print(
        f"{'':34} {'init, median (min-max)':>24} {'x boto3':>8} {'CPU':>7} {'x boto3':>8} "
        f"{'modules':>8} {'first use':>10}"
    )
    for row in rows:
        init, cpu = statistics.median(row.init_ms), statistics.median(row.init_cpu_ms)
        verdict, first_use = "", ""
        if row.module != "boto3":
            verdict = "  target <= 250 ms: " + ("met" if init <= TARGET_MS else "MISSED")
            first_use = f"{statistics.median(row.first_use_ms):7.0f} ms"
        print(
            f"{row.label:34} {_spread(row.init_ms):>24} {init / boto3_ms:8.2f} "
            f"{cpu:4.0f} ms {cpu / boto3_cpu:8.2f} {row.modules:8d} {first_use:>10}{verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
