"""The QA report, from real pytest runs: a demo feature of our own against a stub server,
and the real features against a stack that is not there.

Each run is a pytest subprocess; the assertions read the ``features.html`` and
``summary.json`` it wrote, as a QA lead or CI would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cdk.synth import PROJECT_ROOT
from harness.reports.recording import MAX_CALLS, REDACTED, excerpt, recording, redact_value

DEMO = Path(__file__).parent / "report_demo"
WORDS = {1: "one", 2: "two"}


class _Stub(BaseHTTPRequestHandler):
    """Things by number (with an AWS-looking key in the body), and SQS's JSON protocol."""

    def do_GET(self) -> None:
        number = int(self.path.rsplit("/", 1)[-1])
        self._json({"word": WORDS.get(number, "many"), "owner": "AKIAIOSFODNN7EXAMPLE"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        self._json({"QueueUrls": ["http://stub/q"]} if "ListQueues" in target else {})

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _project(tmp_path: Path) -> Path:
    # Not under tmp_path: -k also matches the names of the folders above the tests, and
    # tmp_path is named after the test.
    project = Path(tempfile.mkdtemp(prefix="demo-", dir=tmp_path.parent.parent))
    shutil.copy(DEMO / "demo.feature", project / "demo.feature")
    shutil.copy(DEMO / "demo_steps.py", project / "test_demo.py")
    shutil.copy(DEMO / "demo_conftest.py", project / "conftest.py")
    return project


def _env(tmp_path: Path, server: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEMO_SERVER": server,
        "DEMO_REPORT_DIR": str(tmp_path / "report"),
        "DEMO_STARTED": str(tmp_path / "started"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:locust",
            "--rootdir", ".", "-c", os.devnull, *args]  # fmt: skip


def _run_demo(tmp_path: Path, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _pytest(*args),
        cwd=_project(tmp_path),
        env=_env(tmp_path, server),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _read(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    report = tmp_path / "report"
    page = (report / "features.html").read_text(encoding="utf-8")
    return page, json.loads((report / "summary.json").read_text(encoding="utf-8"))


def _scenario(summary: dict[str, Any], title_part: str) -> dict[str, Any]:
    matches = [s for s in summary["scenarios"] if title_part in s["title"]]
    assert len(matches) == 1, f"{title_part!r} in {[s['title'] for s in summary['scenarios']]}"
    found: dict[str, Any] = matches[0]
    return found


def test_failures_lead_with_their_message_and_outline_examples_carry_their_values(
    tmp_path: Path, server: str
) -> None:
    run = _run_demo(tmp_path, server, "-k", "names_thing or failed_step")
    assert run.returncode == 1, run.stdout + run.stderr
    page, summary = _read(tmp_path)

    assert summary["status"] == "complete"
    assert summary["totals"] == {"passed": 1, "failed": 2, "skipped": 0, "not run": 0}
    titles = [s["title"] for s in summary["scenarios"]]
    assert "The server names thing 1 [word = one]" in titles
    assert "The server names thing 2 [word = three]" in titles

    outline = _scenario(summary, "thing 2")
    assert outline["message"] == "AssertionError: the server said 'two', not 'three'"
    assert "Traceback" in page
    assert "assert &#x27;two&#x27; == &#x27;three&#x27;" in page
    # The message comes before the folded traceback, and the failure list links to it.
    anchor = page.index(f"id='{_anchor(page, 'thing 2 [word = three]')}'")
    assert page.index("<pre class='message'>", anchor) < page.index("<summary>Traceback", anchor)
    assert f"href='#{_anchor(page, 'thing 2 [word = three]')}'" in page

    stopped = _scenario(summary, "A failed step")
    assert [step["status"] for step in stopped["steps"]] == [
        "passed",
        "passed",
        "failed",
        "not run",
    ]
    assert "href='#failed'" in page
    assert "#failed:target" in page
    # The terminal names the failing example and its message, not only a file and line.
    assert "x The server names thing 2 [word = three]" in run.stdout
    assert "AssertionError: the server said 'two', not 'three'" in run.stdout


def _anchor(page: str, title_part: str) -> str:
    for line in page.splitlines():
        if "<details class='scenario" in line and title_part in line:
            return line.split("id='", 1)[1].split("'", 1)[0]
    raise AssertionError(f"no scenario {title_part!r} on the page")


def test_each_scenario_records_its_own_calls_redacted_and_bounded(
    tmp_path: Path, server: str
) -> None:
    run = _run_demo(tmp_path, server, "-k", "calls_are_recorded or names_thing")
    assert run.returncode == 1, run.stdout + run.stderr
    page, summary = _read(tmp_path)

    first = _scenario(summary, "thing 1")
    assert [(c["method"], c["target"], c["status"]) for c in first["calls"]] == [
        ("GET", "/things/1", "200")
    ]
    calls = _scenario(summary, "Calls are recorded")["calls"]
    post = calls[0]
    assert (post["kind"], post["method"], post["target"]) == ("http", "POST", "/things")
    assert '"client_secret": "<redacted>"' in post["request"]
    assert '"name": "x"' in post["request"]
    aws = [(c["method"], c["target"], c["status"]) for c in calls if c["kind"] == "aws"]
    assert aws == [("sqs", "ListQueues", "200"), ("sqs", "TagQueue", "200")]
    assert '"QueueNamePrefix": "tasks"' in calls[1]["request"]
    assert "http://stub/q" in calls[1]["response"]
    assert '"password": "<redacted>"' in calls[2]["request"]
    assert '"team": "qa"' in calls[2]["request"]
    poll = calls[3]
    assert (poll["target"], poll["count"]) == ("/things/1", 40)
    # Not the background thread's call; the 200 distinct ones bounded.
    assert all(c["target"] != "/things/5000" for c in calls)
    assert len(calls) == MAX_CALLS
    assert _scenario(summary, "Calls are recorded")["calls_omitted"] == 200 + 4 - MAX_CALLS
    for secret in ("s3cret", "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in page
        assert secret not in json.dumps(summary)
    assert "Requests to the stack: 187 HTTP, 2 AWS, 54 more not kept" in page


def test_a_stopped_server_is_named_and_ends_the_run(tmp_path: Path, server: str) -> None:
    run = _run_demo(tmp_path, server, "-k", "stopped_server or calls_are_recorded")
    assert run.returncode == 2, run.stdout + run.stderr  # pytest's "interrupted"
    page, summary = _read(tmp_path)

    stopped = _scenario(summary, "stopped server")
    assert stopped["cause"] == "stack unreachable"
    assert stopped["message"].startswith(
        "The stack did not answer: nothing accepted a connection at "
        "http://127.0.0.1:9/things/1 (connection refused)."
    )
    assert summary["status"] == "incomplete"
    assert "the stack is unreachable (127.0.0.1:9 refuses connections)" in summary["reason"]
    [not_run] = summary["not_run"]
    assert not_run.endswith("demo.feature: Calls are recorded, redacted and bounded")
    assert "The run did not complete." in page


def test_a_stack_that_does_not_deploy_is_named_and_ends_the_run(
    tmp_path: Path, server: str
) -> None:
    run = _run_demo(tmp_path, server, "-k", "does_not_deploy or calls_are_recorded")
    assert run.returncode == 2, run.stdout + run.stderr  # pytest's "interrupted"
    _, summary = _read(tmp_path)

    failed = _scenario(summary, "does not deploy")
    # harness mutate reads the cause: an error, never a kill (tests/unit/harness/
    # test_mutation_verdicts.py), though the step that asked for the stack failed.
    assert failed["cause"] == "stack not deployed"
    assert failed["message"] == (
        "The stack did not deploy: ValueError: Queue visibility timeout: 4 seconds is less than 5"
    )
    assert [step["status"] for step in failed["steps"]] == ["passed", "failed", "not run"]
    assert summary["status"] == "incomplete"
    assert (
        "the stack did not deploy, so the remaining scenarios were not run" in (summary["reason"])
    )
    [not_run] = summary["not_run"]
    assert not_run.endswith("demo.feature: Calls are recorded, redacted and bounded")


def _signal_state(pid: int) -> str:
    """The process's ignored and blocked signal masks, for a failure message."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError as error:
        return f"no /proc status ({error})"
    return ", ".join(
        line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    )


def test_ctrl_c_leaves_a_page_that_says_so(tmp_path: Path, server: str) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "features.html").write_text("<p>54 passed</p>")
    process = subprocess.Popen(
        _pytest("-k", "Interrupted or names_thing"),
        cwd=_project(tmp_path),
        env=_env(tmp_path, server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the demo's waiting step never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired as late:
            raise AssertionError(
                f"no exit 60 s after Ctrl-C; {_signal_state(process.pid)}; output: {late.output!r}"
            ) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2, output
    page, summary = _read(tmp_path)
    assert "54 passed" not in page
    assert summary["status"] == "incomplete"
    assert summary["reason"] == "the run was interrupted (Ctrl-C) before it ended"
    assert summary["totals"] == {"passed": 1, "failed": 1, "skipped": 0, "not run": 1}
    assert "The run did not complete.</b> The run was interrupted (Ctrl-C)" in page
    assert "RUN DID NOT COMPLETE: the run was interrupted (Ctrl-C)" in output


def _outputs(tmp_path: Path, port: int) -> Path:
    url = f"http://127.0.0.1:{port}"
    outputs = {
        "local-Api": {
            "ApiUrl": f"{url}/prod/",
            "AwsEndpointUrl": url,
            "Region": "us-east-1",
            # The API client's keys a local stack writes (its methods use IAM auth).
            "ApiAccessKeyId": "AKIAEXAMPLEINVOKER00",
            "ApiSecretAccessKey": "example-secret",
        },
        "local-Queue": {
            "TaskQueueUrl": f"{url}/1/tasks.fifo",
            "DeadLetterQueueUrl": f"{url}/1/dlq.fifo",
            "TasksTableName": "local-tasks",
            "AwsEndpointUrl": url,
            "Region": "us-east-1",
            "Profile": "ephemeral",
        },
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


_SELECTION = "valid_task_is_accepted or trimmed"


def _run_features(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    report = tmp_path / "report"
    report.mkdir(exist_ok=True)
    (report / "features.html").write_text("<p>54 passed</p>")  # a previous run's page
    selection = "valid_task_is_accepted or trimmed"
    command = [sys.executable, "-m", "pytest", "features", "-p", "no:cacheprovider",
               "--report-dir", str(report), "-k", selection, *args]  # fmt: skip
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240)


def test_the_features_against_a_stack_that_is_not_running(tmp_path: Path) -> None:
    with _closed_port() as port:
        run = _run_features(tmp_path, "--outputs", str(_outputs(tmp_path, port)))
    assert run.returncode == 2, run.stdout + run.stderr  # pytest's "interrupted"
    page, summary = _read(tmp_path)
    assert "54 passed" not in page
    failed = summary["scenarios"][0]
    assert failed["cause"] == "stack unreachable"
    assert "The stack did not answer" in failed["message"]
    assert "refuses connections" in summary["reason"]
    assert summary["totals"]["not run"] == 1
    assert summary["settings"] == {}
    assert "EndpointConnectionError" in summary["settings_error"]
    assert "Could not be read from the stack" in page
    assert "ConnectionError" not in failed["message"]


def test_the_features_with_a_missing_outputs_file(tmp_path: Path) -> None:
    run = _run_features(tmp_path, "--outputs", str(tmp_path / "missing.json"))
    assert run.returncode == 2, run.stdout + run.stderr
    page, summary = _read(tmp_path)
    assert "54 passed" not in page
    assert summary["status"] == "incomplete"
    assert summary["reason"] == (
        f"the run was stopped: cannot use the local target: outputs file "
        f"{tmp_path / 'missing.json'} does not exist"
    )
    assert summary["totals"] == {"passed": 0, "failed": 0, "skipped": 0, "not run": 2}
    assert "The run did not complete.</b> The run was stopped: cannot use" in page


class _closed_port:
    """A port on 127.0.0.1 that nothing listens on while the block runs."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
        return int(self._socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def test_redaction_of_values_and_text() -> None:
    value = {"Tags": {"Password": "p", "x": "AKIAIOSFODNN7EXAMPLE"}, "SessionToken": "t", "n": 1}
    assert redact_value(value) == {
        "Tags": {"Password": REDACTED, "x": REDACTED},
        "SessionToken": REDACTED,
        "n": 1,
    }
    text = excerpt('{"api_key": "k\\"q", "title": "t"}' + "x" * 3000)
    assert text.startswith('{"api_key": "<redacted>", "title": "t"}')
    assert text.endswith("... (1539 more characters)")


CHROMIUM = shutil.which("chromium")
PASSED_GREEN = (0x2E, 0x7D, 0x32)  # the "passed" badge


def screenshot(page: Path, out: Path, *, fragment: str = "", height: int = 2000) -> Path:
    """A headless Chromium screenshot of ``page`` (flags: the machine notes' probe)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             f"--window-size=1280,{height}", f"--screenshot={out}", page.as_uri() + fragment],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    return out


def _pixels(png: Path, colour: tuple[int, int, int]) -> int:
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, value in colours if value == colour)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_in_a_real_browser_failed_only_hides_what_passed(tmp_path: Path, server: str) -> None:
    _run_demo(tmp_path, server, "-k", "names_thing or failed_step or calls_are_recorded")
    page = tmp_path / "report" / "features.html"

    everything = screenshot(page, tmp_path / "all.png")
    failed_only = screenshot(page, tmp_path / "failed.png", fragment="#failed")

    # Two passed scenarios' badges are on the first page, and gone once filtered; the
    # summary's own green (the "passed" chip) stays in both.
    green_all, green_failed = _pixels(everything, PASSED_GREEN), _pixels(failed_only, PASSED_GREEN)
    assert green_all - green_failed > 1000, (green_all, green_failed)
    assert _pixels(failed_only, (0xC6, 0x28, 0x28)) > 1000  # failed badges and messages


def test_an_alternating_poll_is_two_rows_with_counts() -> None:
    with recording() as log:
        for _ in range(30):
            for operation in ("GetQueueAttributes", "GetItem"):
                log.add(kind="aws", method="x", target=operation, status="200",
                        started=time.monotonic(), request="{}", response="{}")  # fmt: skip
        log.add(kind="http", method="GET", target="/t", status="200",
                started=time.monotonic(), request="", response="done")  # fmt: skip
    assert [(c.target, c.count) for c in log.calls] == [
        ("GetQueueAttributes", 30),
        ("GetItem", 30),
        ("/t", 1),
    ]
