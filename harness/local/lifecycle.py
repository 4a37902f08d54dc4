"""``harness local up | down | status``: run the local stack from the command line.

``up`` stays in the foreground until Ctrl-C or SIGTERM and then stops everything it
started. ``up --detach`` starts the same command in the background, waits until its
outputs file is written and returns; ``down`` stops it. ``status`` reads the running
stack's queue depths, function counters and alarm states.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from cdk import contract
from harness.waiting import wait_until

STATE_DIR = Path(".local-stack")
DEFAULT_OUTPUTS = Path("cdk-outputs.local.json")
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


def _print(message: str) -> None:
    print(message, flush=True)


def up(args: argparse.Namespace) -> int:
    """Run the local stack in the foreground (or detached with ``--detach``)."""
    if args.detach:
        return _up_detached(args)
    from harness.local.cloud import LocalStack

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    outputs_file: Path = args.outputs.resolve()
    pid_file = args.pid_file
    try:
        with LocalStack(
            outputs_file=outputs_file,
            assembly_dir=args.assembly,
            throttling=not args.no_throttling,
            port=args.port,
            on_progress=_print,
        ) as stack:
            if pid_file:
                pid_file.write_text(str(os.getpid()))
            _describe(stack.outputs, outputs_file, stack.timings)
            _print("local stack is up; Ctrl-C or SIGTERM stops it")
            stop.wait()
            _print("stopping the local stack ...")
    except Exception as exc:
        print(f"error: the local stack failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if pid_file:
            pid_file.unlink(missing_ok=True)
        outputs_file.unlink(missing_ok=True)
    _print("local stack stopped")
    return 0


def _describe(
    outputs: dict[str, dict[str, str]], outputs_file: Path, timings: dict[str, float]
) -> None:
    flat = contract.flatten(outputs)
    _print(f"outputs written to {outputs_file}")
    for key in (
        contract.API_URL,
        contract.AWS_ENDPOINT_URL,
        contract.TASK_QUEUE_URL,
        contract.DEAD_LETTER_QUEUE_URL,
        contract.TASKS_TABLE_NAME,
        contract.API_FUNCTION_NAME,
        contract.PROCESSOR_FUNCTION_NAME,
    ):
        if key in flat:
            _print(f"  {key:<24} {flat[key]}")
    if timings:
        figures = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in timings.items())
        _print(f"  timings: {figures}")
    _print(
        f"  try: curl -s -X POST {flat.get(contract.API_URL, '')}tasks "
        "-H 'Content-Type: application/json' "
        '-d \'{"title":"t","description":"d","priority":"low"}\''
    )
    _print(
        f"       AWS_ENDPOINT_URL={flat.get(contract.AWS_ENDPOINT_URL, '')} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"aws --region {flat.get(contract.REGION, '')} sqs list-queues"
    )


def _up_detached(args: argparse.Namespace) -> int:
    STATE_DIR.mkdir(exist_ok=True)
    pid_file = STATE_DIR / "pid"
    if pid_file.exists() and _alive(int(pid_file.read_text() or 0)):
        print(
            f"error: a local stack is already running (pid {pid_file.read_text()}); "
            "run `harness local down` first",
            file=sys.stderr,
        )
        return 1
    outputs_file = Path(args.outputs).resolve()
    outputs_file.unlink(missing_ok=True)
    log_file = STATE_DIR / "local-stack.log"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "local",
        "up",
        "--outputs",
        str(outputs_file),
        "--pid-file",
        str(pid_file.resolve()),
        "--port",
        str(args.port),
    ]
    if args.no_throttling:
        command.append("--no-throttling")
    if args.assembly:
        command += ["--assembly", str(args.assembly)]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _print(f"starting the local stack in the background (pid {process.pid}, log {log_file}) ...")

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"the local stack exited with code {process.returncode}; "
                f"see {log_file}:\n{log_file.read_text()[-3000:]}"
            )
        return outputs_file.exists()

    try:
        wait_until(
            ready,
            timeout=START_TIMEOUT_S,
            interval=0.2,
            description=f"the local stack to write {outputs_file}",
        )
    except (RuntimeError, TimeoutError) as exc:
        _terminate(process.pid)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # `status` and `down` run from this directory find the stack (and its outputs) here.
    (STATE_DIR / "outputs").write_text(str(outputs_file))
    outputs = json.loads(outputs_file.read_text())
    try:
        timings = _status_report(outputs).get("timings_s", {})
    except (OSError, ValueError):  # only for the summary: the stack itself is up
        timings = {}
    _describe(outputs, outputs_file, timings)
    _print("detached; stop it with `harness local down`")
    return 0


def down(args: argparse.Namespace) -> int:
    """Stop a detached local stack."""
    pid_file = STATE_DIR / "pid"
    if not pid_file.exists():
        _print("no detached local stack is running")
        return 0
    pid = int(pid_file.read_text() or 0)
    if not _alive(pid):
        pid_file.unlink(missing_ok=True)
        _print(f"the local stack (pid {pid}) had already stopped")
        return 0
    _print(f"stopping the local stack (pid {pid}) ...")
    clean = _terminate(pid)
    pid_file.unlink(missing_ok=True)
    (STATE_DIR / "outputs").unlink(missing_ok=True)
    _print("stopped" if clean else "stopped (had to be killed)")
    return 0


def _terminate(pid: int) -> bool:
    """SIGTERM, wait, then SIGKILL the whole process group; True if it stopped by itself."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    try:
        wait_until(
            lambda: not _alive(pid),
            timeout=STOP_TIMEOUT_S,
            interval=0.1,
            description=f"process {pid} to exit",
        )
        return True
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return False


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _status_report(outputs: dict[str, Any]) -> dict[str, Any]:
    """The running stack's ``/_local/status`` report; raises OSError if it does not answer."""
    endpoint = contract.flatten(outputs).get(contract.AWS_ENDPOINT_URL)
    if not endpoint:
        raise ValueError("not a local stack's outputs file (no AwsEndpointUrl)")
    with urllib.request.urlopen(endpoint + "/_local/status", timeout=10) as response:  # noqa: S310
        report: dict[str, Any] = json.loads(response.read())
    return report


def status(args: argparse.Namespace) -> int:
    """Print queue depths, function counters and alarm states of a running local stack."""
    outputs_file: Path = args.outputs
    recorded = STATE_DIR / "outputs"
    if outputs_file == DEFAULT_OUTPUTS and not outputs_file.exists() and recorded.exists():
        outputs_file = Path(recorded.read_text())  # a detached stack started from here
    try:
        outputs = json.loads(outputs_file.read_text())
    except FileNotFoundError:
        print(f"error: no outputs file at {outputs_file}; is the local stack up?", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {outputs_file} is not JSON: {exc}", file=sys.stderr)
        return 1
    try:
        report = _status_report(outputs)
    except ValueError as exc:
        print(f"error: {outputs_file}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: the local stack does not answer: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print(json.dumps(report, indent=2))
        return 0
    _print(f"local stack at {report['endpoint']}")
    _print("queues (visible / in flight / delayed):")
    for name, depth in report["queues"].items():
        _print(
            f"  {name:<48} {depth.get('visible', 0):>6} {depth.get('in_flight', 0):>6} "
            f"{depth.get('delayed', 0):>6}"
        )
    _print("functions:")
    for name, stats in report["functions"].items():
        shown = ", ".join(f"{k} {v}" for k, v in stats.items() if isinstance(v, (int, float)))
        _print(f"  {name}: {shown}")
    _print("alarms:")
    for name, state in report["alarms"].items():
        _print(f"  {name:<56} {state}")
    return 0


def add_commands(local_subparsers: Any) -> None:
    """Add ``up``, ``down`` and ``status`` to the ``harness local`` group."""
    parser = local_subparsers.add_parser(
        "up", help="run the synthesized stack locally", description=up.__doc__
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=DEFAULT_OUTPUTS,
        help=f"where to write the outputs file (default {DEFAULT_OUTPUTS})",
    )
    parser.add_argument("--detach", action="store_true", help="run in the background")
    parser.add_argument("--port", type=int, default=0, help="AWS endpoint port (default: any free)")
    parser.add_argument(
        "--no-throttling", action="store_true", help="switch off the SQS FIFO throughput quotas"
    )
    parser.add_argument(
        "--assembly",
        type=Path,
        default=None,
        help="deploy this cloud assembly instead of synthesizing",
    )
    parser.add_argument("--pid-file", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=up)

    parser = local_subparsers.add_parser("down", help="stop a detached local stack")
    parser.set_defaults(func=down)

    parser = local_subparsers.add_parser("status", help="queue depths, functions, alarms")
    parser.add_argument("--outputs", type=Path, default=DEFAULT_OUTPUTS)
    parser.add_argument("--json", action="store_true", help="print the raw status JSON")
    parser.set_defaults(func=status)
