"""A stand-in for ``pytest features ...`` and ``harness load ...`` in the verify flow.

``python fake_runner.py features|load <options>`` records its argv to ``FAKE_RUNNER_LOG``,
checks the ``--outputs`` file holds the contract's required outputs, writes
``<report-dir>/features.html`` for ``features``, and exits with ``FAKE_FEATURES_EXIT`` /
``FAKE_LOAD_EXIT`` (default 0). ``FAKE_RUNNER_HANG=features|load`` makes it write its pid to
``FAKE_RUNNER_HANG_FILE`` and wait for SIGINT/SIGTERM (at most ``HANG_LIMIT_S``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Final

from cdk.contract import REQUIRED_OUTPUTS, flatten

HANG_LIMIT_S: Final = 120.0


def _log(entry: dict[str, object]) -> None:
    path = os.environ.get("FAKE_RUNNER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _hang(role: str) -> int:
    received = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        got.append(signum)
        _log({"signal": signal.Signals(signum).name, "role": role})
        received.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    Path(os.environ["FAKE_RUNNER_HANG_FILE"]).write_text(str(os.getpid()), encoding="utf-8")
    if not received.wait(HANG_LIMIT_S):
        return 99
    return 128 + got[0]


def main(argv: list[str]) -> int:
    """Check the outputs file, write a report, exit as told."""
    role, options = argv[0], argv[1:]
    _log({"role": role, "argv": options, "pid": os.getpid()})
    outputs = _option(options, "--outputs")
    if outputs is None:
        print(f"fake {role}: --outputs missing", file=sys.stderr)
        return 4
    merged = flatten(json.loads(Path(outputs).read_text(encoding="utf-8")))
    missing = [key for key in REQUIRED_OUTPUTS if key not in merged]
    if missing:
        print(f"fake {role}: outputs lack {missing}", file=sys.stderr)
        return 4
    report_dir = _option(options, "--report-dir")
    if role == "features" and report_dir:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        (Path(report_dir) / "features.html").write_text(
            "<html>fake report</html>", encoding="utf-8"
        )
    if os.environ.get("FAKE_RUNNER_HANG") == role:
        return _hang(role)
    code = int(os.environ.get(f"FAKE_{role.upper()}_EXIT", "0"))
    print(f"fake {role}: {'passed' if code == 0 else 'failed'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
