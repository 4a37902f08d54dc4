"""``--watch``'s polling and what each kind of edit triggers, against a stand-in stack.

The real stack, a real handler swap and a real redeploy are exercised by
``tests/local_cloud/test_local_stack_reload.py``.
"""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cdk.synth import SynthError
from harness.watch import Reloader, TreeWatcher, error_summary

TREE = {
    "cdk/stacks.py": "A = 1\n",
    "handlers/api.py": "B = 1\n",
    "handlers/requirements.txt": "pydantic==2.14.3\n",
    "cdk.json": "{}\n",
    "requirements/dev.txt": "aws-cdk-lib==2.275.0\n",
}


@dataclass
class Result:
    updated: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    synthesized: bool = False


@dataclass
class FakeStack:
    project_root: Path
    calls: list[str] = field(default_factory=list)
    result: Result = field(default_factory=lambda: Result(updated=("local-api (code)",)))
    error: Exception | None = None

    def _call(self, name: str) -> Result:
        self.calls.append(name)
        if self.error is not None:
            raise self.error
        return self.result

    def swap_handler_code(self) -> Result:
        return self._call("swap")

    def redeploy(self) -> Result:
        return self._call("redeploy")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative, text in TREE.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _bump(path: Path) -> None:
    """A new time stamp even on a file system with coarse ones."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_watcher_reports_edits_by_content(tree: Path) -> None:
    watcher = TreeWatcher(tree)
    assert watcher.changed() == []

    _bump(tree / "handlers" / "api.py")  # touched, same bytes
    assert watcher.changed() == []

    (tree / "handlers" / "api.py").write_text("B = 2\n")
    _bump(tree / "handlers" / "api.py")
    (tree / "handlers" / "new.py").write_text("C = 1\n")
    (tree / "cdk" / "stacks.py").unlink()
    assert watcher.changed() == ["cdk/stacks.py", "handlers/api.py", "handlers/new.py"]
    assert watcher.changed() == []

    (tree / "handlers" / ".api.py.swp").write_text("editor state")
    (tree / "handlers" / "__pycache__").mkdir()
    (tree / "handlers" / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"\0")
    (tree / "README.md").write_text("not an input")
    assert watcher.changed() == []


@pytest.mark.parametrize(
    ("edited", "call", "expected"),
    [
        (["handlers/api.py"], "swap", "reload: handlers/api.py changed: code swapped in "),
        (
            ["cdk/stacks.py", "handlers/api.py"],
            "redeploy",
            "reload: cdk/stacks.py, handlers/api.py changed: assembly taken from the cache in ",
        ),
        (["cdk.json"], "redeploy", "reload: cdk.json changed: assembly taken from the cache in "),
    ],
)
def test_each_kind_of_edit_reloads_its_way_in_one_line(
    tree: Path, edited: list[str], call: str, expected: str
) -> None:
    stack = FakeStack(tree)
    line = Reloader(stack, on_line=print).reload(edited)

    assert stack.calls == [call]
    assert line.startswith(expected), line
    assert "local-api (code); calls in flight finish on the old code" in line
    assert "\n" not in line


@pytest.mark.parametrize("requirements", ["handlers/requirements.txt", "requirements/dev.txt"])
def test_a_requirements_edit_asks_for_a_restart_and_applies_nothing(
    tree: Path, requirements: str
) -> None:
    stack = FakeStack(tree)
    line = Reloader(stack, on_line=print).reload([requirements, "handlers/api.py"])
    assert stack.calls == []
    assert "restart the stack (after `make install`)" in line
    assert "Nothing was applied." in line


def test_changes_that_need_a_restart_are_named(tree: Path) -> None:
    stack = FakeStack(
        tree,
        result=Result(
            needs_restart=("local-Queue/Queue (AWS::SQS::Queue): VisibilityTimeout changed",),
            synthesized=True,
        ),
    )
    line = Reloader(stack, on_line=print).reload(["cdk/config.py"])
    assert line.startswith("reload: cdk/config.py changed: synthesized again in ")
    assert line.endswith(
        "but these changes need a restart (nothing was applied): "
        "local-Queue/Queue (AWS::SQS::Queue): VisibilityTimeout changed"
    )


def test_a_failed_synthesis_is_one_line_naming_the_file_and_line(tree: Path) -> None:
    stack = FakeStack(
        tree,
        error=SynthError(
            "CDK synth (ephemeral) failed with exit code 1:\n"
            "Traceback (most recent call last):\n"
            f'  File "{tree}/cdk/app.py", line 5, in <module>\n'
            f'  File "{tree}/cdk/stacks.py", line 12\n'
            "    x = (\n"
            "SyntaxError: '(' was never closed\n"
        ),
    )
    line = Reloader(stack, on_line=print).reload(["cdk/stacks.py"])
    assert line.startswith("reload: cdk/stacks.py changed: failed after ")
    assert line.endswith(
        "CDK synth (ephemeral) failed with exit code 1: ... "
        "SyntaxError: '(' was never closed (cdk/stacks.py, line 12)"
    )
    assert error_summary(ValueError("plain"), tree) == "plain"


def test_the_reloader_thread_reloads_once_per_settled_edit_and_stops(tree: Path) -> None:
    stack = FakeStack(tree)
    lines: queue.Queue[str] = queue.Queue()
    with Reloader(stack, on_line=lines.put, interval=0.05, settle=0.1):
        (tree / "handlers" / "api.py").write_text("B = 3\n")
        (tree / "handlers" / "other.py").write_text("D = 1\n")
        line = lines.get(timeout=30)
    assert line.startswith("reload: handlers/api.py, handlers/other.py changed: code swapped")
    assert stack.calls == ["swap"]
    assert lines.empty()
