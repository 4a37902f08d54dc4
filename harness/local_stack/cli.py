"""``harness local ...``: the local cloud's command group.

Each sub-command is one ``_add_<name>(subparsers)`` function that registers its parser
and sets ``func``; ``register`` lists them, so adding ``up``/``down``/``status`` is one
function and one line in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from harness.cliargs import PORT
from localcloud import AwsEndpoint


def _add_services(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "services",
        help="serve the local AWS endpoint alone (SQS engine + moto) until Ctrl-C",
        description=(
            "Start the local AWS endpoint on 127.0.0.1: SQS from the local engine (AWS's "
            "FIFO semantics and throughput quotas), every other service from moto. "
            "Prints the URL and runs until Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--port", type=PORT, default=0, help="port to bind, 0 for any free one")
    parser.add_argument(
        "--no-throttling",
        action="store_true",
        help="switch off the FIFO throughput quotas (300 transactions/s per action per queue)",
    )
    parser.set_defaults(func=run_services)


def _add_lifecycle(subparsers: Any) -> None:
    from harness.local_stack.lifecycle import add_commands

    add_commands(subparsers)


_SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (_add_services, _add_lifecycle)


def register(subparsers: Any) -> None:
    """Add the ``local`` command group to the ``harness`` parser."""
    parser = subparsers.add_parser("local", help="the local cloud on 127.0.0.1")
    local = parser.add_subparsers(dest="local_command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(local)


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM (handlers restored afterwards)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_services(args: argparse.Namespace) -> int:
    """``harness local services``: serve until Ctrl-C/SIGTERM, then stop cleanly (exit 0)."""
    endpoint = AwsEndpoint(port=args.port, throttling=not args.no_throttling)
    endpoint.start()
    try:
        quotas = "off" if args.no_throttling else "on"
        print(
            f"Local AWS endpoint: {endpoint.url}  (region {endpoint.region}, FIFO quotas {quotas})"
        )
        print()
        print("  export AWS_ENDPOINT_URL=" + endpoint.url)
        print(f"  export AWS_DEFAULT_REGION={endpoint.region}")
        print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        print()
        print(
            f'  boto3.client("sqs", endpoint_url="{endpoint.url}", region_name="{endpoint.region}")'
        )
        # AWS CLI v1 pins SQS in us-east-1 to queue.amazonaws.com unless given --endpoint-url.
        print(f"  aws --endpoint-url {endpoint.url} sqs list-queues")
        print()
        print("Ctrl-C to stop.", flush=True)
        wait_for_stop_signal()
    finally:
        endpoint.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0
