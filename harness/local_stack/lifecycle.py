"""``harness local up | down | status``: run the local stack from the command line.

``up`` stays in the foreground until Ctrl-C or SIGTERM and then stops everything it
started. ``up --detach`` starts the same command in the background, waits until its
outputs file is written and returns; ``down`` stops it. ``status`` reads the running
stack's queue depths, function counters and alarm states. ``up`` reuses the cloud
assembly of an unchanged tree (``--no-cache`` synthesizes anyway); ``up --watch`` brings
edits of ``handlers/`` and ``cdk/`` into the running stack (``docs/local-stack.md``).

One stack per directory: ``up`` (foreground or detached) claims ``.local-stack/pid`` in
the directory it runs in, and records its outputs file in ``.local-stack/outputs``, so a
second ``up`` there is refused with the first one's pid, and ``status``/``down`` find it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cdk import contract
from harness.cliargs import PORT, existing_dir, fail, int_at_least, new_file
from harness.waiting import wait_until

STATE_DIR = Path(".local-stack")
DEFAULT_OUTPUTS = Path("cdk-outputs.local.json")
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
EXIT_ALREADY_RUNNING = 3
# One line per resource created, deleted or served: shown only with --verbose.
_ROUTINE = re.compile(
    r" \| (CREATE_COMPLETE|DELETE_COMPLETE|SERVING|SKIPPED \(condition false\)) \| AWS::"
)


def _print(message: str) -> None:
    print(message, flush=True)


def progress_printer(verbose: bool, prefix: str = "") -> Callable[[str], None]:
    """The ``on_progress`` of a local stack: every line with ``verbose``, else no
    resource-by-resource lines (the stacks' totals, failures and warnings stay)."""

    def show(message: str) -> None:
        if verbose or not _ROUTINE.search(message):
            _print(prefix + message)

    return show


# ------------------------------------------------------------------- one stack per dir


def _read_pid(pid_file: Path) -> int:
    try:
        return int(pid_file.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def running_pid(state_dir: Path = STATE_DIR) -> int | None:
    """The pid of the local stack started from this directory, if it still runs."""
    pid = _read_pid(state_dir / "pid")
    return pid if pid and _alive(pid) else None


def _answering_pid(outputs_file: Path) -> int | None:
    """The pid of a local stack whose outputs file this is, if that stack answers."""
    try:
        outputs = json.loads(outputs_file.read_text())
        return int(_status_report(outputs, timeout=2)["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refusal(outputs_file: Path, state_dir: Path = STATE_DIR) -> str | None:
    """Why ``up`` must not start here (a stack already runs), or ``None``."""
    pid = running_pid(state_dir)
    if pid is not None:
        return (
            f"a local stack is already running from this directory (pid {pid}); "
            "use it, or stop it with `harness local down`"
        )
    pid = _answering_pid(outputs_file)
    if pid is not None:
        return (
            f"a running local stack (pid {pid}) uses {outputs_file}; stop it first "
            "or pass another --outputs"
        )
    return None


@contextlib.contextmanager
def _claim(outputs_file: Path, state_dir: Path = STATE_DIR) -> Iterator[None]:
    """Hold this directory's pid file for the life of the stack (atomically created)."""
    state_dir.mkdir(exist_ok=True)
    pid_file = state_dir / "pid"
    for _ in range(2):
        try:
            fd = os.open(pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if running_pid(state_dir) is not None:
                raise
            pid_file.unlink(missing_ok=True)  # a stack that died without cleaning up
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        break
    (state_dir / "outputs").write_text(str(outputs_file))
    try:
        yield
    finally:
        if _read_pid(pid_file) == os.getpid():
            pid_file.unlink(missing_ok=True)
            (state_dir / "outputs").unlink(missing_ok=True)


# ------------------------------------------------------------------------------ up


def up(args: argparse.Namespace) -> int:
    """Run the local stack in the foreground (or detached with ``--detach``)."""
    if args.assembly is not None and (args.watch or args.no_cache):
        option = "--watch" if args.watch else "--no-cache"
        why = (
            "watches the tree the assembly is synthesized from"
            if args.watch
            else "is about synthesizing, which --assembly skips"
        )
        return fail("harness local up", f"{option} {why}: drop --assembly or {option}")
    outputs_file: Path = args.outputs.resolve()
    reason = refusal(outputs_file)
    if reason:
        print(f"harness local up: error: {reason}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    if args.detach:
        return _up_detached(args, outputs_file)
    from harness.local_stack.cloud import LocalDeployment
    from localcloud import set_fifo_quota

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if args.fifo_quota is not None:
        set_fifo_quota(args.fifo_quota)
    try:
        with _claim(outputs_file):
            try:
                with LocalDeployment(
                    outputs_file=outputs_file,
                    assembly_dir=args.assembly,
                    throttling=not args.no_throttling,
                    port=args.port,
                    on_progress=progress_printer(args.verbose),
                    use_cache=not args.no_cache,
                ) as stack:
                    _describe(stack.outputs, outputs_file, stack.timings)
                    with _watching(stack, args.watch):
                        _print("local stack is up; Ctrl-C or SIGTERM stops it")
                        # Timed: a signal the kernel hands to another thread only wakes a
                        # main thread that returns to the interpreter now and then.
                        while not stop.wait(0.5):
                            pass
                    _print("stopping the local stack ...")
            except Exception as exc:
                print(f"error: the local stack failed: {exc}", file=sys.stderr)
                return 1
            finally:
                outputs_file.unlink(missing_ok=True)
    except FileExistsError:  # another `up` claimed the directory between check and start
        print(f"harness local up: error: {refusal(outputs_file)}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    _print("local stack stopped")
    return 0


@contextlib.contextmanager
def _watching(stack: Any, watch: bool) -> Iterator[None]:
    """With ``--watch``, reload the stack on every edit of the tree while the body runs."""
    if not watch:
        yield
        return
    from harness.watch import POLL_INTERVAL_S, Reloader

    with Reloader(stack, on_line=_print):
        _print(
            f"watching {stack.project_root}/handlers and cdk for changes "
            f"(every {POLL_INTERVAL_S:g}s); each reload prints one line"
        )
        yield


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
    _print('  try: eval "$(.venv/bin/harness local credentials --shell)"')
    _print(f"       {curl_line(flat)}")
    _print(f"       {aws_cli_line(flat)}")


def curl_line(flat_outputs: dict[str, str]) -> str:
    """A curl command that POSTs a task, signed with the credentials in the environment
    (the API's methods use IAM authorization; ``harness local credentials --shell``)."""
    region = flat_outputs.get(contract.REGION, "us-east-1")
    return (
        f'curl -s --aws-sigv4 "aws:amz:{region}:execute-api" '
        '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" '
        f"-X POST {flat_outputs.get(contract.API_URL, '')}tasks "
        "-H 'Content-Type: application/json' "
        '-d \'{"title":"t","description":"d","priority":"low"}\''
    )


def _add_running_outputs_argument(parser: argparse.ArgumentParser) -> None:
    """``--outputs`` of a command that reads a running stack's outputs file."""
    parser.add_argument(
        "--outputs",
        type=Path,
        default=DEFAULT_OUTPUTS,
        help="the stack's outputs file (default: the stack started from this directory, "
        f"else {DEFAULT_OUTPUTS})",
    )


def _outputs_path(outputs_file: Path) -> Path:
    """The given outputs file, or the one of the stack started from this directory."""
    recorded = STATE_DIR / "outputs"
    if outputs_file == DEFAULT_OUTPUTS and not outputs_file.exists() and recorded.exists():
        return Path(recorded.read_text())
    return outputs_file


def credentials(args: argparse.Namespace) -> int:
    """Print the credentials API clients of the local stack sign with (IAM users of the
    local cloud): the invoker's by default, or ``--no-invoke``'s (a valid key that may not
    invoke the API); as ``export`` lines with ``--shell``, else as JSON."""
    from harness.api_auth import CredentialsUnavailable, local_credentials
    from harness.target import TargetError, read_outputs

    outputs_file = _outputs_path(args.outputs)
    try:
        flat = read_outputs(outputs_file)
        found = local_credentials(flat, "no_invoke" if args.no_invoke else "invoker")
    except (TargetError, CredentialsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    values = {
        **found.environment(),
        "AWS_DEFAULT_REGION": flat.get(contract.REGION, "us-east-1"),
        "TASK_API_URL": flat.get(contract.API_URL, ""),
    }
    if args.shell:
        for name, value in values.items():
            _print(f"export {name}={shlex.quote(value)}")
    else:
        _print(json.dumps(values, indent=2))
    return 0


def aws_cli_line(flat_outputs: dict[str, str], command: str = "sqs list-queues") -> str:
    """An AWS CLI command line that reaches the local stack, for every service.

    ``--endpoint-url`` rather than ``AWS_ENDPOINT_URL``: AWS CLI v1 ignores the variable
    for SQS in us-east-1 (it pins ``queue.amazonaws.com``).
    """
    return (
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"aws --endpoint-url {flat_outputs.get(contract.AWS_ENDPOINT_URL, '')} "
        f"--region {flat_outputs.get(contract.REGION, '')} {command}"
    )


def start_detached(
    outputs_file: Path,
    *,
    port: int = 0,
    throttling: bool = True,
    assembly: Path | None = None,
    fifo_quota: float | None = None,
    verbose: bool = False,
    watch: bool = False,
    use_cache: bool = True,
) -> dict[str, Any]:
    """Start ``harness local up`` in the background from this directory; return its
    outputs once written. Raises ``RuntimeError`` (with the log's tail) if it fails."""
    STATE_DIR.mkdir(exist_ok=True)
    log_file = STATE_DIR / "local-stack.log"
    command = [
        sys.executable, "-m", "harness.cli", "local", "up",
        "--outputs", str(outputs_file), "--port", str(port),
    ]  # fmt: skip
    if not throttling:
        command.append("--no-throttling")
    if assembly:
        command += ["--assembly", str(assembly)]
    if fifo_quota is not None:
        command += ["--fifo-quota", f"{fifo_quota:g}"]
    if verbose:
        command.append("--verbose")
    if watch:
        command.append("--watch")
    if not use_cache:
        command.append("--no-cache")
    outputs_file.unlink(missing_ok=True)
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
        raise RuntimeError(str(exc)) from exc
    outputs: dict[str, Any] = json.loads(outputs_file.read_text())
    return outputs


def _up_detached(args: argparse.Namespace, outputs_file: Path) -> int:
    try:
        outputs = start_detached(
            outputs_file,
            port=args.port,
            throttling=not args.no_throttling,
            assembly=args.assembly,
            fifo_quota=args.fifo_quota,
            verbose=args.verbose,
            watch=args.watch,
            use_cache=not args.no_cache,
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        timings = _status_report(outputs).get("timings_s", {})
    except (OSError, ValueError):  # only for the summary: the stack itself is up
        timings = {}
    _describe(outputs, outputs_file, timings)
    _print("detached; stop it with `harness local down`")
    return 0


# ---------------------------------------------------------------------------- down


def down(args: argparse.Namespace) -> int:
    """Stop the local stack started from this directory (detached or in the foreground)."""
    pid_file = STATE_DIR / "pid"
    if not pid_file.exists():
        _print("no local stack started from this directory is running")
        return 0
    pid = _read_pid(pid_file)
    if not _alive(pid):
        pid_file.unlink(missing_ok=True)
        (STATE_DIR / "outputs").unlink(missing_ok=True)
        _print(f"the local stack (pid {pid}) had already stopped")
        return 0
    _print(f"stopping the local stack (pid {pid}) ...")
    clean = _terminate(pid)
    if _read_pid(pid_file) == pid:  # it cleans up after itself unless it was killed
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
        # A detached stack leads its own process group (its workers are in it too); a
        # foreground one started from a shell may not.
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)
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
    except PermissionError:
        return True
    # A zombie holds no port and runs no code: it is gone.
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


# -------------------------------------------------------------------------- status


def _status_report(outputs: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """The running stack's ``/_local/status`` report; raises OSError if it does not answer."""
    endpoint = contract.flatten(outputs).get(contract.AWS_ENDPOINT_URL)
    if not endpoint:
        raise ValueError("not a local stack's outputs file (no AwsEndpointUrl)")
    with urllib.request.urlopen(endpoint + "/_local/status", timeout=timeout) as response:  # noqa: S310
        report: dict[str, Any] = json.loads(response.read())
    return report


def status(args: argparse.Namespace) -> int:
    """Print queue depths, function counters, alarm states and the calls IAM refused of a
    running local stack."""
    outputs_file = _outputs_path(args.outputs)  # the stack started from here, if any
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
    _print(f"local stack at {report['endpoint']} (pid {report.get('pid', '?')})")
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
    refused = report.get("iam_refused") or []
    if refused:
        _print("refused by IAM (AccessDenied; each distinct call once):")
        for call in refused:
            role = str(call.get("role_arn", "")).rsplit("/", 1)[-1]
            _print(f"  {call.get('action')} on {call.get('resource')} (role {role})")
    return 0


def add_commands(local_subparsers: Any) -> None:
    """Add ``up``, ``down``, ``status`` and ``credentials`` to the ``harness local`` group."""
    parser = local_subparsers.add_parser(
        "up", help="run the synthesized stack locally", description=up.__doc__
    )
    parser.add_argument(
        "--outputs",
        type=new_file,
        default=DEFAULT_OUTPUTS,
        help="where to write the outputs file (its directory must exist)",
    )
    parser.add_argument(
        "--detach", action="store_true", help="run in the background; `harness local down` stops it"
    )
    parser.add_argument(
        "--port", type=PORT, default=0, help="AWS endpoint port, 0 for any free one"
    )
    parser.add_argument(
        "--no-throttling", action="store_true", help="switch off the SQS FIFO throughput quotas"
    )
    parser.add_argument(
        "--fifo-quota",
        type=int_at_least(1),
        default=None,
        metavar="CALLS_PER_S",
        help="lower the SQS FIFO quota (per action per queue; AWS: 300) to see throttling "
        "at rates this machine can offer (default: AWS's 300)",
    )
    parser.add_argument(
        "--assembly",
        type=existing_dir,
        default=None,
        help="deploy this cloud assembly (a cdk.out directory) instead of synthesizing "
        "(default: synthesize the ephemeral profile)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="synthesize even when the cached cloud assembly of an unchanged tree could be "
        "reused (default: reuse it)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="bring edits of handlers/ (code swapped) and cdk/ (synthesized again, "
        "redeployed or a restart asked for) into the running stack",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print every resource as it is created and deleted"
    )
    parser.set_defaults(func=up)

    parser = local_subparsers.add_parser(
        "down", help="stop the local stack started from this directory"
    )
    parser.set_defaults(func=down)

    parser = local_subparsers.add_parser("status", help="queue depths, functions, alarms")
    _add_running_outputs_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the raw status JSON")
    parser.set_defaults(func=status)

    parser = local_subparsers.add_parser(
        "credentials",
        help="credentials to call the local stack's API with (it uses IAM authorization)",
        description=credentials.__doc__,
    )
    _add_running_outputs_argument(parser)
    parser.add_argument(
        "--shell", action="store_true", help="print `export NAME=value` lines (for eval)"
    )
    parser.add_argument(
        "--no-invoke",
        action="store_true",
        help="the key that is valid but may not invoke the API (to see the 403)",
    )
    parser.set_defaults(func=credentials)
