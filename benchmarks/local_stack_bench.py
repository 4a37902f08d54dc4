"""Benchmark of the local stack (issues 5, 19): start, reload, invoke overhead, drain, ingest.

    .venv/bin/python benchmarks/local_stack_bench.py [--tasks 2000] [--starts 3]
        [--ready-runs 5] [--reloads 3] [--only-start | --skip-start] [--drain-runs 1]
        [--calls-requests 50]

One run prints, against the targets for a 2-core machine:

- **command to ready**: ``harness local up`` run as a user runs it, from the command to its
  outputs file, on an unchanged tree (the cloud assembly reused from the synthesis cache)
  and with ``--no-cache`` (synthesized), alternately, ``--ready-runs`` times each after
  one untimed run that fills the cache; each run with the load average and how busy the
  machine's cores were meanwhile;
- **handler reload**: ``--watch``'s reloader on a copy of the tree (the real ``handlers/``
  is not touched), ``--reloads`` edits of a handler: from the file written to the reload
  line, and to the first API answer with the new behaviour (a cold start included);
- **start after synthesis**: the stack's ``timings["start_after_synth"]``, from the end of
  synthesis to the outputs file written. First as ``harness local up`` does it (synthesis
  in the same ``LocalDeployment``, the local cloud's modules loading meanwhile), then the median
  of ``LocalDeployment(assembly_dir=...)`` starts again in the same process (``--starts``).
- **warm invoke overhead**: ``stack.lambdas.invoke`` of a trivial handler in the stack's
  Lambda service (a real ``awslambdaric`` worker behind the loopback Runtime API) minus a
  direct in-process call of the same handler (decode event, call, encode result), medians;
  the same for the real API handler (``GET /tasks/{id}``, one DynamoDB read) for scale.
- **API ingest**: ``--tasks`` concurrent ``POST /tasks`` through the local API Gateway
  from ``--threads`` keep-alive connections, after a warm-up. The load generator
  (``post_tasks.py``) runs in its own process, as API clients are not in the cloud's.
  The processor's event source mapping is DISABLED meanwhile, so the figure is the API
  path alone and the tasks pile up in the queue, all in the one message group the
  stack uses. For scale, the same number of tasks then go through the API handler
  called directly in ``--threads`` processes (``post_tasks.py --direct``, the function's
  environment, the same endpoint): the function's own ceiling on this machine, without
  API Gateway and the Lambda runtime. Ingest is printed as a share of it, and as a share
  of what its own CPU per task allows on the machine's cores (the restatement proposed
  in docs/benchmarks.md: the stack waits on nothing), with the local stack's own CPU per
  task (through it, minus the direct call).
- **single-group drain**: the mapping is then enabled and the clock runs until the queue
  is empty and every task is COMPLETED in the table: the processor side alone (ESM
  receive, one batch in flight for the one group, the processor's DynamoDB updates,
  deletes). Real task messages, written by the real API, in the real table.

``--drain-runs N`` runs N such rounds of ingest and drain on the one stack, each printed
with its own direct-call ceiling measured right after it (so a busy spell of the shared
machine lands on both sides of the ratio), then the drain target as "k of N >= 300/s"
with the minimum, median and maximum. ``--skip-start`` leaves out command to ready and
the reloads.

- **AWS calls per task**, a figure that does not depend on the machine: the calls each
  function's own code made during the rounds (``POST`` during ingest, the processor
  during the drain) and for ``--calls-requests`` POSTs with an ``Idempotency-Key`` and as
  many GETs, counted from the local cloud's record of calls (:class:`AwsCallCounter`),
  beside the minimum ``tests/unit/handlers/handler_tests/test_aws_calls.py`` pins.

Both phases also split the CPU they used between the functions' workers (from ``/proc``),
this process (the local cloud) and the load generator, and print the rate each split
allows: a miss is then either the functions' own cost or the local cloud's. They print
how busy the machine's cores were too (busy, idle, stolen by the hypervisor): idle cores
mean the phase waited on something, ~100 % busy means it was CPU-bound.

The assembly is synthesized with the stage throttle raised (``throttle_rate``/
``throttle_burst`` context): the stack's configured 100 requests/s would otherwise be
what the ingest figure measured (the local API Gateway enforces it, as AWS does). The
FIFO quota is raised for the same reason (``--fifo-quota``, default 10,000 calls/s; AWS
and the local cloud: 300 SendMessage calls/s per queue without high-throughput mode).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.lambda_bench import (  # noqa: E402
    HANDLER_SOURCE,
    PAYLOAD,
    TARGET_OVERHEAD_MS,
    timed_ms,
)
from benchmarks.post_tasks import LambdaContext  # noqa: E402
from cdk import contract  # noqa: E402 - after the repo root is importable
from cdk.node import env_with_node, put_node_on_path  # noqa: E402
from harness.drivers import TaskApi  # noqa: E402
from harness.local_stack.cloud import LocalDeployment  # noqa: E402
from harness.synth_cache import INPUT_DIRS, INPUT_FILES  # noqa: E402
from harness.target import Target  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from harness.watch import Reloader  # noqa: E402
from localcloud.clients import local_client  # noqa: E402
from localcloud.lambda_service.testing import function_role, function_spec  # noqa: E402

TARGET_START_S = 2.0
TARGET_DRAIN_PER_S = 300.0
TARGET_INGEST_PER_S = 300.0
TARGET_INGEST_SHARE = 0.9
BENCH_CONTEXT = {"stack_prefix": "local", "throttle_rate": "10000", "throttle_burst": "5000"}
# A FIFO queue without high-throughput mode takes 300 SendMessage calls/s (the local cloud
# enforces it, as AWS does): at the ingest target that quota, not the machinery, would be
# what ingest and the direct-call ceiling measured (their calls above it get 503).
BENCH_FIFO_QUOTA = 10_000.0


def _flat(stack: LocalDeployment) -> dict[str, str]:
    return contract.flatten(stack.outputs)


# --- command to ready and reload ------------------------------------------------------------


def _harness_command() -> list[str]:
    """``harness`` as a user runs it: the virtualenv's console script."""
    script = Path(sys.executable).with_name("harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]


def command_to_ready(work: Path, *, cached: bool | None) -> dict[str, Any]:
    """``harness local up`` (``--no-cache`` when ``cached`` is False) from the command to
    its outputs file; the load average before and the machine's cores meanwhile. With
    ``cached`` None, whether the cache was used is not checked."""
    cwd = Path(tempfile.mkdtemp(prefix="up-", dir=work))
    outputs, log = cwd / "outputs.json", cwd / "up.log"
    command = [*_harness_command(), "local", "up", "--outputs", str(outputs)]
    if cached is False:
        command.append("--no-cache")
    load = os.getloadavg()[0]
    machine = _machine_cpu_s()
    began = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env_with_node(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: outputs.exists() or process.poll() is not None,
            timeout=300,
            interval=0.005,
            description=f"`{' '.join(command)}` to write its outputs file",
        )
        ready_s = time.monotonic() - began
        cores = _machine_shares(_cpu_used(machine, _machine_cpu_s()))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    reused = "reusing the cloud assembly" in text
    if cached is not None:  # None: the cache-filling run, which may synthesize or not
        assert reused == cached, f"cached={cached} but the stack said:\n{text[:2000]}"
    return {"ready_s": ready_s, "load": load, "cores": cores}


def measure_command_to_ready(work: Path, runs: int) -> dict[str, list[dict[str, Any]]]:
    """``runs`` cached and ``runs`` uncached starts, alternately, after one that fills the
    cache (not timed: it may have to synthesize)."""
    command_to_ready(work, cached=None)
    figures: dict[str, list[dict[str, Any]]] = {"cached": [], "uncached": []}
    for _ in range(runs):
        for kind in ("uncached", "cached"):
            run = command_to_ready(work, cached=kind == "cached")
            figures[kind].append(run)
            print(
                f"command to ready, {kind}: {run['ready_s']:.2f}s (load average "
                f"{run['load']:.2f}; cores {run['cores']})"
            )
    return figures


def _tree_copy(work: Path) -> Path:
    """A copy of what synthesis reads: the assemblies cache shared (content-addressed: the
    copy's inputs are the same), the Lambda assets its own, so each edit is bundled anew."""
    copy = work / "tree"
    for name in INPUT_DIRS:
        shutil.copytree(REPO_ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in INPUT_FILES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, copy / name)
    (copy / "build").mkdir()
    (REPO_ROOT / "build" / "cdk-assemblies").mkdir(parents=True, exist_ok=True)
    (copy / "build" / "cdk-assemblies").symlink_to(REPO_ROOT / "build" / "cdk-assemblies")
    deps = REPO_ROOT / "build" / "lambda-assets" / "deps"
    if deps.is_dir():  # the pip-installed dependencies, hard-linked: no pip run needed
        shutil.copytree(deps, copy / "build" / "lambda-assets" / "deps", copy_function=os.link)
    return copy


def measure_reloads(work: Path, reloads: int) -> list[dict[str, float]]:
    """Edit a handler of a watched stack ``reloads`` times: seconds to the reload line, the
    time the line reports, and seconds to the first answer with the new behaviour."""
    tree = _tree_copy(work)
    lines: queue.Queue[str] = queue.Queue()
    task = {"title": "reload", "description": "d", "priority": "low"}
    runs = []
    with (
        LocalDeployment(project_root=tree, work_dir=work / "reload") as stack,
        Reloader(stack, on_line=lines.put),
    ):
        api = TaskApi(Target.from_outputs_file(stack.outputs_file, "local"))
        message = str(api.submit(task).json["message"])
        (holder,) = (p for p in (tree / "handlers").rglob("*.py") if message in p.read_text())
        for index in range(reloads):
            new = f"{message.split(' (reload')[0]} (reload {index} {uuid.uuid4().hex[:6]})"
            began = time.monotonic()
            holder.write_text(holder.read_text().replace(message, new))
            line = lines.get(timeout=120)
            line_s = time.monotonic() - began
            wait_until(
                lambda new=new: api.submit(task).json["message"] == new,  # type: ignore[misc]
                timeout=60,
                interval=0.01,
                description="the API to answer with the edited handler",
            )
            answer_s = time.monotonic() - began
            reported = float(line.split(" in ", 1)[1].split("s", 1)[0])
            print(
                f"handler edit: reload line after {line_s:.2f}s (swap itself {reported:.2f}s), "
                f"first new answer after {answer_s:.2f}s: {line}"
            )
            runs.append({"line_s": line_s, "swap_s": reported, "answer_s": answer_s})
            message = new
        api.close()
    return runs


def _spread(values: list[float], unit: str = "s") -> str:
    return (
        f"{statistics.median(values):.2f} {unit} ({min(values):.2f}-{max(values):.2f}, "
        f"n={len(values)})"
    )


# --- start --------------------------------------------------------------------------------


def measure_starts(work: Path, starts: int) -> tuple[Path, list[dict[str, float]]]:
    """Start and stop the stack ``starts`` times: the assembly and each start's timings.

    The first start synthesizes (not from the cache), as ``harness local up --no-cache``
    does (the local cloud's modules load meanwhile, off the start-up path); the others
    reuse its cloud assembly.
    """
    first = LocalDeployment(work_dir=work / "start-0", context=BENCH_CONTEXT, use_cache=False)
    with first:
        runs = [dict(first.timings)]
    assert first.assembly_dir is not None
    for index in range(1, starts):
        with LocalDeployment(
            work_dir=work / f"start-{index}", assembly_dir=first.assembly_dir
        ) as s:
            runs.append(dict(s.timings))
    return first.assembly_dir, runs


# --- warm invoke overhead -----------------------------------------------------------------


def _logging_role(stack: LocalDeployment, name: str) -> str:
    """A role that may write its function's logs, as every function's role may (without
    one, the local cloud refuses the log shipping, which then does less than it does for
    the stack's functions)."""
    iam: Any = local_client("iam", stack.endpoint.url, stack.endpoint.region)
    return function_role(
        iam,
        name,
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    )


def trivial_overhead(stack: LocalDeployment, code_dir: Path, invokes: int) -> tuple[float, float]:
    """Median ms of a warm invoke and of a direct call of a trivial handler."""
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "bench_trivial.py").write_text(HANDLER_SOURCE)
    spec = function_spec(
        code_dir,
        "bench_trivial.handler",
        prefix="bench",
        timeout_s=30,
        role_arn=_logging_role(stack, "bench-trivial"),
    )
    stack.lambdas.add_function(spec)
    name = spec.function_name
    sys.path.insert(0, str(code_dir))
    module: Any = importlib.import_module("bench_trivial")
    context = LambdaContext()

    def direct() -> bytes:
        return json.dumps(module.handler(json.loads(PAYLOAD), context)).encode()

    first = stack.lambdas.invoke(name, PAYLOAD)
    assert first.function_error is None, first.payload
    for _ in range(100):  # warm both paths
        stack.lambdas.invoke(name, PAYLOAD)
        direct()
    direct_ms = statistics.median(timed_ms(direct, invokes))
    warm_ms = statistics.median(timed_ms(lambda: stack.lambdas.invoke(name, PAYLOAD), invokes))
    return warm_ms, direct_ms


def _get_event(task_id: str) -> dict[str, Any]:
    """A REST v1 proxy event for ``GET /tasks/{task_id}``."""
    return {
        "resource": "/tasks/{task_id}",
        "path": f"/tasks/{task_id}",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json", "Host": "127.0.0.1"},
        "multiValueHeaders": {"Accept": ["application/json"], "Host": ["127.0.0.1"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"task_id": task_id},
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "prod",
            "resourcePath": "/tasks/{task_id}",
            "httpMethod": "GET",
            "path": f"/prod/tasks/{task_id}",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _signing_env(stack: LocalDeployment) -> dict[str, str]:
    """The load generator's environment: the API client's credentials, which it signs
    every request with (the API's methods use IAM authorization)."""
    from harness.api_auth import local_credentials

    flat = _flat(stack)
    return {
        **os.environ,
        **local_credentials(flat).environment(),
        "AWS_DEFAULT_REGION": flat[contract.REGION],
    }


def _direct_call_env(stack: LocalDeployment) -> dict[str, str]:
    """What a direct call of the API handler needs: the function's environment, pointed at
    the same local endpoint, untraced (its worker traces with the stack's X-Ray daemon and
    a trace header per invocation, which a direct caller has neither of: the X-Ray SDK's
    share of the worker's CPU per task, about 1 ms, counts as the stack's)."""
    spec = stack.lambdas.function_spec(_flat(stack)[contract.API_FUNCTION_NAME])
    return {
        **spec.environment,
        "AWS_ENDPOINT_URL": stack.endpoint.url,
        "AWS_REGION": stack.endpoint.region,
        "AWS_DEFAULT_REGION": stack.endpoint.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def api_handler_overhead(stack: LocalDeployment, task_id: str, invokes: int) -> tuple[float, float]:
    """Median ms of the real API handler: warm invoke vs a direct in-process call."""
    name = _flat(stack)[contract.API_FUNCTION_NAME]
    payload = json.dumps(_get_event(task_id)).encode()
    os.environ.update(_direct_call_env(stack))
    context = LambdaContext()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        # Powertools logs each request to stdout, as in the worker (whose output is shipped).
        api: Any = importlib.import_module("handlers.api")

        def direct() -> bytes:
            reply = api.handler(json.loads(payload), context)
            assert reply["statusCode"] == 200, reply
            return json.dumps(reply).encode()

        for _ in range(50):
            stack.lambdas.invoke(name, payload)
            direct()
        direct_ms = statistics.median(timed_ms(direct, invokes))
        warm_ms = statistics.median(timed_ms(lambda: stack.lambdas.invoke(name, payload), invokes))
    return warm_ms, direct_ms


# --- ingest and drain ---------------------------------------------------------------------


@dataclass
class _Posted:
    """What a load-generator run reports (``benchmarks/post_tasks.py``)."""

    elapsed_s: float
    cpu_s: float
    statuses: dict[int, int]
    task_ids: list[str]


class _LoadGenerator:
    """``post_tasks.py`` in its own process: started (imports paid) before the caller reads
    CPU counters, then :meth:`go` starts the posts and :meth:`report` waits for them."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        script = Path(__file__).with_name("post_tasks.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._commands, self._replies = self._process.stdin, self._process.stdout

    def wait_ready(self) -> None:
        if not self._replies.readline():
            raise RuntimeError("the load generator exited before it was ready")

    def go(self) -> None:
        self._commands.write("go\n")
        self._commands.flush()

    def report(self) -> _Posted:
        line = self._replies.readline()
        if not line:
            raise RuntimeError("the load generator exited without a report")
        report = json.loads(line)
        statuses = {int(k): v for k, v in report["statuses"].items()}
        return _Posted(report["elapsed_s"], report["cpu_s"], statuses, report["task_ids"])

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        self._commands.close()
        self._replies.close()


@contextlib.contextmanager
def _load_generators(
    args: list[list[str]], env: dict[str, str] | None = None
) -> Iterator[Callable[[], list[_Posted]]]:
    """Start one generator per argument list, all ready; yields a function that runs them
    together and returns their reports. Every process is killed on the way out."""
    generators: list[_LoadGenerator] = []
    try:
        for each in args:
            generators.append(_LoadGenerator(each, env))
        for generator in generators:
            generator.wait_ready()

        def go() -> list[_Posted]:
            for generator in generators:
                generator.go()
            return [generator.report() for generator in generators]

        yield go
    finally:
        for generator in generators:
            generator.close()


def _post_tasks(stack: LocalDeployment, count: int, threads: int) -> _Posted:
    with _load_generators(
        [[_flat(stack)[contract.API_URL], str(count), str(threads)]], _signing_env(stack)
    ) as go:
        return go()[0]


def direct_ceiling(stack: LocalDeployment, tasks: int, processes: int) -> dict[str, Any]:
    """The API handler called directly in ``processes`` processes, against the same endpoint.

    No API Gateway and no Lambda runtime: the function's own work and the DynamoDB and SQS
    calls it makes, served by the same local cloud. What ingest cannot exceed here.
    """
    env = {**os.environ, **_direct_call_env(stack)}
    each = tasks // processes
    with _load_generators([["--direct", str(each)]] * processes, env) as go:
        cloud_cpu, machine = time.process_time(), _machine_cpu_s()
        reports = go()
        cloud_cpu = time.process_time() - cloud_cpu
        machine = _cpu_used(machine, _machine_cpu_s())
    done = sum(r.statuses.get(200, 0) for r in reports)
    statuses: Counter[int] = sum((Counter(r.statuses) for r in reports), Counter())
    # A call the busy machine stalls past the API client's 1 s read timeout is a 503, as
    # the function answers on AWS; a handful is the machine, more is a broken run.
    if done < 0.95 * each * processes:
        raise RuntimeError(f"the direct calls mostly failed: {dict(statuses)}")
    return {
        "statuses": dict(statuses),
        "per_s": done / max(r.elapsed_s for r in reports),
        "function_cpu_ms": 1000 * sum(r.cpu_s for r in reports) / done,
        "cloud_cpu_ms": 1000 * cloud_cpu / done,
        "machine": _machine_shares(machine),
    }


def _set_mapping(stack: LocalDeployment, enabled: bool) -> None:
    client: Any = local_client("lambda", stack.endpoint.url, stack.endpoint.region)
    processor = _flat(stack)[contract.PROCESSOR_FUNCTION_NAME]
    for mapping in client.list_event_source_mappings(FunctionName=processor)["EventSourceMappings"]:
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)


def _queue_counts(stack: LocalDeployment) -> tuple[int, int]:
    queue_url = _flat(stack)[contract.TASK_QUEUE_URL]
    depth = stack.endpoint.sqs.queue_depths()[queue_url]
    return depth.visible, depth.not_visible


def _completed(stack: LocalDeployment, task_ids: list[str]) -> int:
    dynamodb: Any = local_client("dynamodb", stack.endpoint.url, stack.endpoint.region)
    table = _flat(stack)[contract.TASKS_TABLE_NAME]
    done = 0
    for start in range(0, len(task_ids), 100):
        keys: list[dict[str, Any]] = [{"task_id": {"S": i}} for i in task_ids[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            reply = dynamodb.batch_get_item(RequestItems=request)
            done += sum(
                1
                for item in reply["Responses"].get(table, [])
                if item["status"]["S"] == "COMPLETED"
            )
            request = dict(reply.get("UnprocessedKeys") or {})
    return done


_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _machine_cpu_s() -> dict[str, float]:
    """The whole machine's CPU seconds so far (all cores, from ``/proc/stat``): busy, idle,
    and stolen by the hypervisor (other guests ran while this one wanted the core)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) / _TICKS_PER_S for v in Path("/proc/stat").read_text().split()[1:9]
    )
    return {
        "machine busy": user + nice + system + irq + softirq,
        "machine idle": idle + iowait,
        "machine stolen": steal,
    }


def _machine_shares(used: dict[str, float]) -> str:
    total = sum(used[f"machine {k}"] for k in ("busy", "idle", "stolen")) or 1.0
    return ", ".join(f"{used[f'machine {k}'] / total:.0%} {k}" for k in ("busy", "idle", "stolen"))


def _cpu_snapshot(stack: LocalDeployment) -> dict[str, float]:
    """CPU seconds so far: ``local cloud`` (this process), each function's workers, and the
    machine's (:func:`_machine_cpu_s`)."""
    snapshot = {"local cloud": time.process_time(), **_machine_cpu_s()}
    for name in stack.lambdas.stats():
        snapshot[name] = sum(_process_cpu_s(pid) for pid in stack.lambdas.worker_pids(name))
    return snapshot


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def ingest_and_drain(
    stack: LocalDeployment, tasks: int, threads: int, counter: AwsCallCounter | None = None
) -> dict[str, Any]:
    """Ingest ``tasks`` with the mapping disabled, then time the single-group drain; with a
    ``counter``, also the AWS calls the API function made during ingest and the processor
    (and the event source mapping, with its role) during the drain."""
    # Warm-up (not timed): the API workers for every thread, and the processor.
    warm = _post_tasks(stack, threads * 10, threads)
    assert warm.statuses.get(200) == threads * 10, f"warm-up: {warm.statuses}"
    wait_until(
        lambda: _completed(stack, warm.task_ids) == len(warm.task_ids),
        timeout=120, interval=0.2, description="the warm-up tasks to complete",
    )  # fmt: skip
    _set_mapping(stack, enabled=False)
    # An in-flight poll may still deliver a batch: wait until nothing is in flight.
    wait_until(
        lambda: _queue_counts(stack) == (0, 0),
        timeout=30, description="an empty task queue with the mapping disabled",
    )  # fmt: skip

    no_calls: Counter[tuple[str, str, bool]] = Counter()
    with _load_generators(
        [[_flat(stack)[contract.API_URL], str(tasks), str(threads)]], _signing_env(stack)
    ) as go:
        calls_before = counter.snapshot() if counter else no_calls
        cpu_before = _cpu_snapshot(stack)
        (posted,) = go()
        ingest_cpu = _cpu_used(cpu_before, _cpu_snapshot(stack))
        ingest_calls = counter.snapshot() if counter else no_calls
    ids = posted.task_ids
    # A long poll issued before the mapping was disabled may still take one batch: wait
    # until nothing is in flight and the backlog holds still, and drain what is there.
    seen: list[tuple[int, int]] = []

    def settled_backlog() -> int | None:
        seen.append(_queue_counts(stack))
        quiet = len(seen) > 10 and len(set(seen[-10:])) == 1 and seen[-1][1] == 0
        return seen[-1][0] if quiet else None

    backlog = wait_until(
        settled_backlog, timeout=60, interval=0.1, description="a backlog holding still"
    )

    drain_before = counter.snapshot() if counter else no_calls
    cpu_before = _cpu_snapshot(stack)
    began = time.perf_counter()
    _set_mapping(stack, enabled=True)
    wait_until(
        lambda: _queue_counts(stack) == (0, 0),
        timeout=600, interval=0.02, description="the task queue to drain",
    )  # fmt: skip
    drain_s = time.perf_counter() - began
    drain_cpu = _cpu_used(cpu_before, _cpu_snapshot(stack))
    drain_calls = counter.snapshot() if counter else no_calls
    completed = _completed(stack, ids)
    api_name = _flat(stack)[contract.API_FUNCTION_NAME]
    processor_name = _flat(stack)[contract.PROCESSOR_FUNCTION_NAME]
    return {
        "post_calls": calls_of(calls_before, ingest_calls, api_name),
        "processor_calls": calls_of(drain_before, drain_calls, processor_name),
        "mapping_calls": calls_of(drain_before, drain_calls, processor_name, own=False),
        "accepted": len(ids),
        "statuses": posted.statuses,
        "ingest_s": posted.elapsed_s,
        "ingest_per_s": len(ids) / posted.elapsed_s,
        "backlog": backlog,
        "drain_s": drain_s,
        "drain_per_s": backlog / drain_s,
        "completed": completed,
        "a_task_id": ids[0],
        "api_cpu_ms": 1000 * ingest_cpu[_flat(stack)[contract.API_FUNCTION_NAME]] / len(ids),
        "ingest_cloud_cpu_ms": 1000 * ingest_cpu["local cloud"] / len(ids),
        "load_generator_cpu_ms": 1000 * posted.cpu_s / len(ids),
        "processor_cpu_ms": (
            1000 * drain_cpu[_flat(stack)[contract.PROCESSOR_FUNCTION_NAME]] / max(backlog, 1)
        ),
        "drain_cloud_cpu_ms": 1000 * drain_cpu["local cloud"] / max(backlog, 1),
        "ingest_machine": _machine_shares(ingest_cpu),
        "drain_machine": _machine_shares(drain_cpu),
    }


# --- AWS calls per task -----------------------------------------------------------------------


class AwsCallCounter:
    """How many AWS calls each function's role made, read off the local cloud's access record.

    The endpoint hands every request it receives with a function's credentials to its
    ``AccessLog`` (``record_request``), which names the IAM action and calls ``check``; the
    local cloud itself also acts with a function's role (the event source mapping's receives
    and deletes, the log shipping) through ``check`` alone. This counter wraps those two
    methods on the one ``AccessLog`` instance of the stack in this process (the local
    cloud's code is not changed, and :meth:`close` puts them back), and counts
    ``(function, action, own)``: ``own`` when the function's code made the call.
    """

    def __init__(self, access: Any) -> None:
        self._access = access
        self._local = threading.local()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, bool]] = Counter()
        record_request, check = access.record_request, access.check

        def counted_record_request(*args: Any, **kwargs: Any) -> Any:
            self._local.own = True
            try:
                return record_request(*args, **kwargs)
            finally:
                self._local.own = False

        def counted_check(principal: Any, action: str, resource: str) -> Any:
            key = (principal.function_name, action, getattr(self._local, "own", False))
            with self._lock:
                self._counts[key] += 1
            return check(principal, action, resource)

        access.record_request, access.check = counted_record_request, counted_check

    @classmethod
    def attach(cls, stack: LocalDeployment) -> AwsCallCounter | None:
        """A counter on ``stack``'s access record, or None if this local cloud has none."""
        access = getattr(stack.endpoint, "access", None)
        if access is None or not all(hasattr(access, m) for m in ("record_request", "check")):
            return None
        return cls(access)

    def snapshot(self) -> Counter[tuple[str, str, bool]]:
        """The counts so far (a copy)."""
        with self._lock:
            return Counter(self._counts)

    def close(self) -> None:
        """Give the access record its own methods back."""
        for name in ("record_request", "check"):
            self._access.__dict__.pop(name, None)


def calls_of(
    before: Counter[tuple[str, str, bool]],
    after: Counter[tuple[str, str, bool]],
    function: str,
    *,
    own: bool = True,
) -> Counter[str]:
    """The calls ``function`` made between two snapshots (its own, or the service's with its
    role), by operation name (``dynamodb:PutItem`` -> ``PutItem``)."""
    made: Counter[str] = Counter()
    for (name, action, is_own), count in (after - before).items():
        if name == function and is_own == own:
            made[action.split(":", 1)[-1]] += count
    return made


def per_task(calls: Counter[str], tasks: int) -> str:
    """``3.00 per task (PutItem 1.00, SendMessage 1.00, UpdateItem 1.00)``."""
    tasks = max(tasks, 1)
    each = ", ".join(f"{op} {n / tasks:.2f}" for op, n in sorted(calls.items()))
    return f"{sum(calls.values()) / tasks:.2f} per task ({each or 'none'})"


def at_minimum(
    calls: Counter[str], tasks: int, minimum: tuple[str, ...], tolerance: float = 0.0
) -> bool:
    """Whether ``tasks`` tasks made ``minimum``'s calls each: exactly, or within
    ``tolerance`` calls per task of each operation (a request the busy machine timed out
    still made some calls, and is not an accepted task)."""
    expected = Counter(minimum)
    if set(calls) != set(expected):
        return False
    return all(abs(calls[op] / max(tasks, 1) - n) <= tolerance for op, n in expected.items())


def keyed_and_get_calls(
    stack: LocalDeployment, counter: AwsCallCounter, requests: int
) -> dict[str, Counter[str]]:
    """The API function's calls for ``requests`` POSTs with an ``Idempotency-Key`` each and
    as many GETs of those tasks, through the local API Gateway."""
    api = TaskApi(Target.from_outputs_file(stack.outputs_file, "local"))
    function = _flat(stack)[contract.API_FUNCTION_NAME]
    task = {"title": "calls", "description": "d", "priority": "low"}
    try:
        before = counter.snapshot()
        ids = []
        for _ in range(requests):
            answer = api.submit(task, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert answer.status == 200, answer
            ids.append(str(answer.json["task_id"]))
        keyed = counter.snapshot()
        for task_id in ids:
            assert api.get(task_id).status == 200
        after = counter.snapshot()
    finally:
        api.close()
    return {"keyed": calls_of(before, keyed, function), "get": calls_of(keyed, after, function)}


# --- report -------------------------------------------------------------------------------


@contextlib.contextmanager
def _work_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="local-stack-bench-") as tmp:
        yield Path(tmp)


def _row(name: str, measured: str, target: str, met: bool) -> str:
    return f"| {name:<38} | {measured:>22} | {target:>10} | {'met' if met else 'MISSED':<6} |"


def _print_calls(
    rounds: list[dict[str, Any]], extra: Mapping[str, Counter[str]] | None, requests: int
) -> None:
    """Each handler's AWS calls per task, measured, beside the minimum the unit test pins."""
    from tests.unit.handlers.handler_tests.test_aws_calls import MINIMUM_CALLS

    def total(key: str) -> Counter[str]:
        return sum((run[key] for run in rounds), Counter())

    tasks = sum(run["accepted"] for run in rounds)
    backlog = sum(run["backlog"] for run in rounds)
    failed = sum(n for run in rounds for code, n in run["statuses"].items() if code != 200)
    rows: list[tuple[str, Counter[str], int]] = [("POST", total("post_calls"), tasks)]
    if extra is not None:
        rows += [
            ("POST with Idempotency-Key", extra["keyed"], requests),
            ("GET", extra["get"], requests),
        ]
    rows.append(("processor, per task", total("processor_calls"), backlog))
    print(
        "AWS calls per task, measured in this run (the functions' own SDK calls, counted from "
        "the local cloud's access record), beside the minimum test_aws_calls.py pins:"
    )
    # POSTs that failed (a timeout on the busy machine) made calls without adding a task.
    tolerance = 0.01 if failed else 0.0
    for path, calls, count in rows:
        minimum = MINIMUM_CALLS[path]
        met = at_minimum(calls, count, minimum, tolerance if path == "POST" else 0.0)
        verdict = "at the minimum" if met else "ABOVE THE MINIMUM"
        print(
            f"  {path:<26} {per_task(calls, count)}; minimum {len(minimum)} "
            f"({', '.join(minimum)}): {verdict}"
        )
    if failed:
        print(f"  ({failed} POSTs of the rounds were not 200: their calls count, not their tasks)")
    print(
        "  not the function's code: the event source mapping and the log shipping, with the "
        f"processor's role, {per_task(total('mapping_calls'), backlog)}"
    )


def _print_round(index: int, figures: Mapping[str, Any], ceiling: Mapping[str, Any]) -> None:
    share = (
        f" ({figures['ingest_per_s'] / ceiling['per_s']:.0%} of the direct-call ceiling: "
        f"{ceiling['per_s']:.0f} tasks/s (statuses {ceiling['statuses']}), function "
        f"{ceiling['function_cpu_ms']:.2f}, local "
        f"cloud {ceiling['cloud_cpu_ms']:.2f} ms CPU per task; cores {ceiling['machine']})"
    )
    print(
        f"round {index}: drain {figures['drain_per_s']:.0f} msg/s ({figures['backlog']} messages "
        f"in {figures['drain_s']:.2f}s, {figures['completed']} COMPLETED; processor "
        f"{figures['processor_cpu_ms']:.2f} ms, local cloud {figures['drain_cloud_cpu_ms']:.2f} "
        f"ms CPU per message; cores {figures['drain_machine']}); ingest "
        f"{figures['ingest_per_s']:.0f} tasks/s{share} (statuses {figures['statuses']}; API "
        f"{figures['api_cpu_ms']:.2f}, local cloud {figures['ingest_cloud_cpu_ms']:.2f}, load "
        f"generator {figures['load_generator_cpu_ms']:.2f} ms CPU per task; cores "
        f"{figures['ingest_machine']}); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def _runs_line(values: list[float], target: float, unit: str) -> tuple[str, bool]:
    met = sum(value >= target for value in values)
    text = f"{statistics.median(values):.0f} {unit} (min {min(values):.0f}, max {max(values):.0f})"
    return f"{met} of {len(values)} >= {target:.0f}/s; {text}", met == len(values)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table of measured figures against the targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks to ingest and drain")
    parser.add_argument("--threads", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--starts", type=int, default=3, help="stack starts to time")
    parser.add_argument("--invokes", type=int, default=1000, help="warm invokes to time")
    parser.add_argument(
        "--ready-runs", type=int, default=5, help="cached and uncached `local up`s to time"
    )
    parser.add_argument("--reloads", type=int, default=3, help="handler edits to time")
    parser.add_argument(
        "--drain-runs",
        type=int,
        default=1,
        help="ingest+drain rounds on one stack, each printed (the drain target: N of N)",
    )
    parser.add_argument(
        "--calls-requests",
        type=int,
        default=50,
        help="POSTs with an Idempotency-Key (and GETs) whose AWS calls are counted",
    )
    parser.add_argument(
        "--fifo-quota",
        type=float,
        default=BENCH_FIFO_QUOTA,
        help="FIFO calls/s per action per queue during invoke, ingest and drain (AWS: 300)",
    )
    parser.add_argument(
        "--only-start",
        action="store_true",
        help="only command to ready and reloads (skip invoke, ingest and drain)",
    )
    parser.add_argument(
        "--skip-start",
        action="store_true",
        help="skip command to ready and reloads (invoke, ingest and drain only)",
    )
    args = parser.parse_args(argv)
    if args.drain_runs < 1 or args.calls_requests < 1:
        parser.error("--drain-runs and --calls-requests must be at least 1")
    if args.only_start and args.skip_start:
        parser.error("--only-start and --skip-start exclude each other")
    put_node_on_path()

    if not args.skip_start:
        with _work_dir() as work:
            ready = measure_command_to_ready(work, args.ready_runs)
            reloads = measure_reloads(work, args.reloads)
        cached = [run["ready_s"] for run in ready["cached"]]
        uncached = [run["ready_s"] for run in ready["uncached"]]
        print()
        print(f"| {'figure':<38} | {'measured':>22} | {'target':>10} | result |")
        print(f"|{'-' * 40}|{'-' * 24}|{'-' * 12}|--------|")
        under = sum(value < TARGET_START_S for value in cached)
        met = statistics.median(cached) < TARGET_START_S
        print(_row("command to ready, unchanged tree", _spread(cached), "< 2 s", met))
        print(_row(f"  runs under 2 s: {under} of {len(cached)}", "", "", under == len(cached)))
        print(_row("  same, --no-cache (synthesizes)", _spread(uncached), "-", True))
        swap = _spread([run["swap_s"] for run in reloads])
        print(_row("handler edit: swap (reload line)", swap, "-", True))
        line = _spread([run["line_s"] for run in reloads])
        print(_row("  edit to reload line (polls 0.5 s)", line, "-", True))
        answer = _spread([run["answer_s"] for run in reloads])
        print(_row("  edit to first new answer", answer, "-", True))
        if args.only_start:
            return 0
        print()

    from localcloud import set_fifo_quota

    set_fifo_quota(args.fifo_quota)
    print(
        f"FIFO quota for this part: {args.fifo_quota:.0f} calls/s per action per queue (AWS: 300)"
    )
    with _work_dir() as work:
        assembly, starts = measure_starts(work, max(args.starts - 1, 1))
        with LocalDeployment(work_dir=work / "bench", assembly_dir=assembly) as stack:
            counter = AwsCallCounter.attach(stack)
            starts.append(dict(stack.timings))
            for run in starts:
                print("start: " + ", ".join(f"{k} {v:.2f}s" for k, v in run.items()))
            first_start_s = starts[0]["start_after_synth"]
            repeat_start_s = statistics.median(run["start_after_synth"] for run in starts[1:])
            warm_ms, direct_ms = trivial_overhead(stack, work / "trivial", args.invokes)
            print(f"trivial handler: warm invoke {warm_ms:.3f} ms, direct {direct_ms:.4f} ms")
            rounds, ceilings = [], []
            for index in range(1, args.drain_runs + 1):
                if index > 1:
                    _set_mapping(stack, enabled=True)  # the warm-up drains the ceiling's tasks
                figures = ingest_and_drain(stack, args.tasks, args.threads, counter)
                assert figures["completed"] == figures["accepted"], figures["statuses"]
                rounds.append(figures)
                # The ceiling right after each ingest, so a busy spell of the shared machine
                # lands on both sides of the ratio alike.
                _set_mapping(stack, enabled=False)  # as during ingest
                ceiling = direct_ceiling(stack, args.tasks, args.threads)
                ceilings.append(ceiling)
                _print_round(index, figures, ceiling)
            figures = rounds[0]
            extra = None
            if counter is not None:
                extra = keyed_and_get_calls(stack, counter, args.calls_requests)
            api_warm, api_direct = api_handler_overhead(
                stack, figures["a_task_id"], args.invokes // 2
            )
            print(f"API handler (GET): warm invoke {api_warm:.3f} ms, direct {api_direct:.3f} ms")
            status = stack.status()
            for name, fn in status["functions"].items():
                print(
                    f"{name}: {fn['invocations']} invocations, {fn['cold_starts']} cold starts, "
                    f"{fn['errors']} errors, {fn['timeouts']} timeouts, {fn['throttles']} throttles"
                )
            for mapping in status["event_source_mappings"].values():
                print(
                    f"event source mapping: {mapping['batches']} batches, {mapping['records']} "
                    f"records, {mapping['failed_batches']} failed batches, "
                    f"{mapping['delete_failures']} delete failures"
                )
            if counter is not None:
                counter.close()

    overhead = warm_ms - direct_ms
    drains = [run["drain_per_s"] for run in rounds]
    ingests = [run["ingest_per_s"] for run in rounds]
    ceiling_rates = [each["per_s"] for each in ceilings]
    shares = [run / each for run, each in zip(ingests, ceiling_rates, strict=True)]
    print()
    print(f"| {'figure':<38} | {'measured':>22} | {'target':>10} | result |")
    print(f"|{'-' * 40}|{'-' * 24}|{'-' * 12}|--------|")
    first_ok = first_start_s < TARGET_START_S
    print(
        _row("start after synthesis (`up --no-cache`)", f"{first_start_s:.2f} s", "< 2 s", first_ok)
    )
    repeat_ok = repeat_start_s < TARGET_START_S
    print(_row("  same, again in the same process", f"{repeat_start_s:.2f} s", "< 2 s", repeat_ok))
    print(
        _row(
            "warm invoke overhead (trivial handler)",
            f"{overhead:.2f} ms ({warm_ms / direct_ms:.0f}x direct)",
            f"<= {TARGET_OVERHEAD_MS} ms",
            overhead <= TARGET_OVERHEAD_MS,
        )
    )
    print(
        _row(
            "  same, real API handler (GET)",
            f"{api_warm - api_direct:.2f} ms ({api_warm / api_direct:.1f}x)",
            "-",
            True,
        )
    )
    drain = statistics.median(drains)
    ingest = statistics.median(ingests)
    rounds_note = f", median of {len(rounds)}" if len(rounds) > 1 else ""
    print(
        _row(
            f"single-group drain{rounds_note}",
            f"{drain:.0f} msg/s",
            ">= 300/s",
            drain >= TARGET_DRAIN_PER_S,
        )
    )
    print(
        _row(
            f"API ingest{rounds_note}",
            f"{ingest:.0f} tasks/s",
            ">= 300/s",
            ingest >= TARGET_INGEST_PER_S,
        )
    )
    share = statistics.median(shares)
    print(
        _row(
            "  share of the direct-call ceiling",
            f"{share:.0%} of {statistics.median(ceiling_rates):.0f}/s",
            ">= 90 %",
            share >= TARGET_INGEST_SHARE,
        )
    )
    # The restatement proposed in docs/benchmarks.md: ingest reaches what its own CPU per
    # task allows on these cores (nothing in the stack waits: no lock convoy, no polling),
    # while the direct-call share above cannot pass ~75-80 % on a CPU-bound machine.
    cores = os.cpu_count() or 1
    bound_shares = [
        run["ingest_per_s"]
        * (run["api_cpu_ms"] + run["ingest_cloud_cpu_ms"] + run["load_generator_cpu_ms"])
        / (1000 * cores)
        for run in rounds
    ]
    bound_share = statistics.median(bound_shares)
    print(
        _row(
            "  share of its CPU limit (proposed)",
            f"{bound_share:.0%}",
            ">= 90 %",
            bound_share >= TARGET_INGEST_SHARE,
        )
    )
    drain_line, drain_all = _runs_line(drains, TARGET_DRAIN_PER_S, "msg/s")
    print()
    verdict = "met" if drain_all else "MISSED"
    print(f"single-group drain, {len(drains)} runs: {drain_line}: {verdict}")
    share_line = ", ".join(f"{value:.0%}" for value in shares)
    print(
        f"ingest, {len(ingests)} runs: {min(ingests):.0f}-{max(ingests):.0f} tasks/s; "
        f"{share_line} of the direct-call ceiling measured right after each "
        f"({min(ceiling_rates):.0f}-{max(ceiling_rates):.0f} tasks/s)"
    )
    # Where the CPU goes, so a miss can be told apart: the functions' own work, or the
    # local cloud's. One group drains one batch at a time, so the processor's CPU per
    # message bounds the drain; ingest runs on every core, so the sum bounds it.
    processor_ms = statistics.median(run["processor_cpu_ms"] for run in rounds)
    drain_cloud_ms = statistics.median(run["drain_cloud_cpu_ms"] for run in rounds)
    api_ms = statistics.median(run["api_cpu_ms"] for run in rounds)
    ingest_cloud_ms = statistics.median(run["ingest_cloud_cpu_ms"] for run in rounds)
    generator_ms = statistics.median(run["load_generator_cpu_ms"] for run in rounds)
    print()
    print(
        f"drain CPU per message: processor function {processor_ms:.2f} ms, local cloud "
        f"{drain_cloud_ms:.2f} ms; the function alone allows at most "
        f"{1000 / processor_ms:.0f} msg/s on one group"
    )
    print(f"  the machine's cores meanwhile: {figures['drain_machine']}")
    print(
        f"ingest CPU per task: API function {api_ms:.2f} ms, local cloud "
        f"{ingest_cloud_ms:.2f} ms, load generator {generator_ms:.2f} ms; {cores} cores "
        f"allow at most {1000 * cores / (api_ms + ingest_cloud_ms + generator_ms):.0f} "
        f"tasks/s, the function alone {1000 * cores / api_ms:.0f}"
    )
    direct_function_ms = statistics.median(each["function_cpu_ms"] for each in ceilings)
    direct_cloud_ms = statistics.median(each["cloud_cpu_ms"] for each in ceilings)
    print(
        f"  called directly: function {direct_function_ms:.2f} ms, local cloud "
        f"{direct_cloud_ms:.2f} ms per task; {cores} cores allow at most "
        f"{1000 * cores / (direct_function_ms + direct_cloud_ms):.0f} tasks/s: through API "
        f"Gateway and the Lambda runtime ingest can reach at most "
        f"{(direct_function_ms + direct_cloud_ms) / (api_ms + ingest_cloud_ms + generator_ms):.0%}"
        f" of the direct calls' rate while both are CPU-bound"
    )
    through_ms = api_ms + ingest_cloud_ms + generator_ms
    print(
        f"  the local stack's own CPU per task (through it, minus the direct call): "
        f"{through_ms - direct_function_ms - direct_cloud_ms:.2f} ms, "
        f"{(through_ms - direct_function_ms - direct_cloud_ms) / direct_function_ms:.0%} of the "
        f"function's; ingest per round at {', '.join(f'{v:.0%}' for v in bound_shares)} of "
        f"what its CPU per task allows"
    )
    print(f"  the machine's cores meanwhile: {figures['ingest_machine']}")
    print()
    if counter is None:
        print("AWS calls per task: this local cloud keeps no access record to count them from")
    else:
        _print_calls(rounds, extra, args.calls_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
