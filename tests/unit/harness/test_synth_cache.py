"""The synthesis cache: an unchanged tree reuses its cloud assembly, any change of what
synthesis reads synthesizes again, a damaged or foreign entry is never used.

A stand-in synthesizer writes a small assembly (manifest, template, code asset) into a
copy of the project's layout in a temp dir and counts its calls; the real synthesis is
exercised by ``tests/local_cloud/test_local_stack_cache.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cdk.node import env_with_node
from cdk.synth import PROJECT_ROOT
from harness.synth_cache import ENTRY_FILE, Lease, SynthCache, check_entry, input_files, input_key

CONTEXT = {"stack_prefix": "local"}
TREE = {
    "cdk/app.py": "print('app')\n",
    "cdk/stacks.py": "TIMEOUT = 3\n",
    "cdk/components/queues.py": "VISIBILITY = 4\n",
    "handlers/api.py": "def handler(event, context):\n    return 1\n",
    "handlers/domain/tasks.py": "TITLE_MAX = 200\n",
    "handlers/requirements.txt": "pydantic==2.14.3\n",
    "cdk.json": '{"app": "python -m cdk.app", "context": {"flag": true}}\n',
    "requirements/dev.txt": "aws-cdk-lib==2.275.0\n",
    "cdk/node.py": "NODE = 24\n",
}


class FakeSynth:
    """Writes a small assembly like CDK's (manifest, template, asset dir) and counts calls."""

    def __init__(self, expires_at: str | None = None) -> None:
        self.calls: list[tuple[str, Path, dict[str, str], Path]] = []
        self.expires_at = expires_at
        self.fail = False

    def __call__(
        self,
        profile: str,
        outdir: Path,
        context: Mapping[str, str] | None = None,
        *,
        validate: bool = False,
        project_root: Path = PROJECT_ROOT,
    ) -> Path:
        self.calls.append((profile, outdir, dict(context or {}), project_root))
        if self.fail:
            raise RuntimeError("the app failed to synthesize")
        outdir.mkdir(parents=True, exist_ok=True)
        tags = {"profile": profile} | ({"expires-at": self.expires_at} if self.expires_at else {})
        manifest = {
            "artifacts": {
                "local-Queue": {
                    "type": "aws:cloudformation:stack",
                    "properties": {"templateFile": "local-Queue.template.json", "tags": tags},
                }
            }
        }
        (outdir / "manifest.json").write_text(json.dumps(manifest))
        (outdir / "local-Queue.template.json").write_text(
            json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Context": context})
        )
        asset = outdir / "asset.abc"
        asset.mkdir(exist_ok=True)
        handler = (project_root / "handlers" / "api.py").read_bytes()
        (asset / "api.py").write_bytes(handler)
        return outdir.resolve()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for relative, text in TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def synth() -> FakeSynth:
    return FakeSynth()


@pytest.fixture
def cache(tree: Path, synth: FakeSynth) -> SynthCache:
    return SynthCache(tree, synthesize=synth)


def _lease(
    cache: SynthCache, tmp_path: Path, context: Mapping[str, str] = CONTEXT, **options: object
) -> Lease:
    profile = str(options.pop("profile", "ephemeral"))
    lease = cache.lease(profile, context, private_dir=tmp_path / "private", **options)  # type: ignore[arg-type]
    lease.release()
    return lease


def test_an_unchanged_tree_reuses_the_assembly_and_says_so(
    cache: SynthCache, synth: FakeSynth, tmp_path: Path, tree: Path
) -> None:
    first = _lease(cache, tmp_path)
    second = _lease(cache, tmp_path)

    assert len(synth.calls) == 1
    assert not first.reused
    assert first.cached
    assert second.reused
    assert second.path == first.path
    assert (second.path / "manifest.json").is_file()
    assert synth.calls[0][3] == tree.resolve(), "the app must run from the tree given"
    line = second.describe(tree)
    when = first.synthesized_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert line == (
        f"reusing the cloud assembly synthesized at {when} (inputs unchanged): "
        f"build/cdk-assemblies/{second.key[:24]}"
    )
    assert "no cached assembly for these inputs" in first.describe(tree)


def _edit(relative: str, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return edit


def _flip_a_byte(relative: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / relative
        data = bytearray(path.read_bytes())
        data[-2] ^= 1  # same size, one byte differs
        path.write_bytes(bytes(data))

    return edit


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_flip_a_byte("handlers/api.py"), id="a byte in a handler"),
        pytest.param(_flip_a_byte("handlers/domain/tasks.py"), id="a byte in the domain"),
        pytest.param(_flip_a_byte("cdk/components/queues.py"), id="a byte in a construct"),
        pytest.param(_edit("handlers/new.py", "X = 1\n"), id="a new handler module"),
        pytest.param(lambda root: (root / "cdk/stacks.py").unlink(), id="a file removed"),
        pytest.param(
            _edit("handlers/requirements.txt", "pydantic==2.14.4\n"), id="a handler dependency pin"
        ),
        pytest.param(
            _edit("requirements/dev.txt", "aws-cdk-lib==2.276.0\n"), id="a CDK dependency pin"
        ),
        pytest.param(
            _edit("cdk.json", '{"app": "python -m cdk.app", "context": {"flag": false}}\n'),
            id="a cdk.json feature flag",
        ),
        pytest.param(_edit("cdk/node.py", "NODE = 26\n"), id="the module the app imports"),
    ],
)
def test_each_change_of_a_file_synthesis_reads_synthesizes_again(
    cache: SynthCache,
    synth: FakeSynth,
    tmp_path: Path,
    tree: Path,
    change: Callable[[Path], None],
) -> None:
    first = _lease(cache, tmp_path)
    change(tree)
    second = _lease(cache, tmp_path)

    assert len(synth.calls) == 2
    assert not second.reused
    assert second.key != first.key
    assert second.path != first.path
    assert (first.path / "manifest.json").is_file(), "the other entry stays for a switch back"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"stack_prefix": "local"}, {"stack_prefix": "other"}, id="the stack prefix"),
        pytest.param(
            {"stack_prefix": "local"},
            {"stack_prefix": "local", "visibility_timeout": "8"},
            id="a timing override",
        ),
        pytest.param(
            {"stack_prefix": "local", "throttle_rate": "100"},
            {"stack_prefix": "local", "throttle_rate": "10000"},
            id="an override's value",
        ),
    ],
)
def test_a_context_change_synthesizes_again(
    cache: SynthCache,
    synth: FakeSynth,
    tmp_path: Path,
    before: dict[str, str],
    after: dict[str, str],
) -> None:
    _lease(cache, tmp_path, before)
    second = _lease(cache, tmp_path, after)

    assert not second.reused
    assert synth.calls[-1][2] == after
    assert _lease(cache, tmp_path, before).reused, "switching back reuses the first entry"


def test_another_profile_never_reuses_an_entry(
    cache: SynthCache, synth: FakeSynth, tmp_path: Path
) -> None:
    ephemeral = _lease(cache, tmp_path)
    production = _lease(cache, tmp_path, {}, profile="production")

    assert not production.reused
    assert synth.calls[-1][0] == "production"
    # An entry.json claiming another profile under this key is refused too.
    meta_file = ephemeral.path.parent / ENTRY_FILE
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "profile": "production"}))
    assert check_entry(ephemeral.path.parent, ephemeral.key, "ephemeral") == (
        "it holds the 'production' profile, not 'ephemeral'"
    )
    assert not _lease(cache, tmp_path).reused


@pytest.mark.parametrize(
    ("name", "value"),
    [("CDK_DEFAULT_REGION", "eu-west-1"), ("GITHUB_ACTOR", "someone-else"), ("CDK_DEBUG", "1")],
)
def test_an_environment_variable_the_app_reads_synthesizes_again(
    cache: SynthCache,
    synth: FakeSynth,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    monkeypatch.delenv(name, raising=False)
    _lease(cache, tmp_path)
    monkeypatch.setenv(name, value)
    assert not _lease(cache, tmp_path).reused


def test_bytecode_and_editor_files_do_not_count(
    cache: SynthCache, synth: FakeSynth, tmp_path: Path, tree: Path
) -> None:
    _lease(cache, tmp_path)
    (tree / "handlers" / "__pycache__").mkdir()
    (tree / "handlers" / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tree / "handlers" / ".api.py.swp").write_bytes(b"vim")
    (tree / "cdk" / "stacks.py~").write_text("backup")
    (tree / "handlers" / "api.py").touch()  # a new time stamp, the same bytes

    assert _lease(cache, tmp_path).reused
    assert len(synth.calls) == 1


def _corrupt_template(entry: Path) -> None:
    template = entry / "assembly" / "local-Queue.template.json"
    data = bytearray(template.read_bytes())
    data[5] ^= 1
    template.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(_corrupt_template, "changed local-Queue.template.json", id="a flipped byte"),
        pytest.param(
            lambda e: (e / "assembly" / "asset.abc" / "api.py").write_text(""),
            "changed asset.abc/api.py",
            id="a truncated asset file",
        ),
        pytest.param(
            lambda e: (e / "assembly" / "manifest.json").unlink(),
            "missing manifest.json",
            id="a file deleted",
        ),
        pytest.param(
            lambda e: (e / "assembly" / "asset.abc" / "shadow.py").write_text("x"),
            "extra asset.abc/shadow.py",
            id="a file added",
        ),
        pytest.param(
            lambda e: (e / ENTRY_FILE).write_text('{"format": 1, "ke'),
            "entry.json is unreadable",
            id="entry.json half written",
        ),
        pytest.param(
            lambda e: (e / ENTRY_FILE).unlink(), "entry.json is missing", id="entry.json missing"
        ),
    ],
)
def test_a_damaged_entry_is_synthesized_again_and_replaced(
    cache: SynthCache,
    synth: FakeSynth,
    tmp_path: Path,
    tree: Path,
    damage: Callable[[Path], None],
    reason: str,
) -> None:
    first = _lease(cache, tmp_path)
    damage(first.path.parent)

    second = _lease(cache, tmp_path)

    assert not second.reused
    assert second.cached
    assert reason in second.describe(tree)
    assert len(synth.calls) == 2
    assert check_entry(second.path.parent, second.key, "ephemeral") is None
    assert _lease(cache, tmp_path).reused, "the rebuilt entry is whole and reused"


def test_an_entry_whose_expiry_tag_has_passed_is_synthesized_again(
    tree: Path, tmp_path: Path
) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    synth = FakeSynth(expires_at=past)
    cache = SynthCache(tree, synthesize=synth)
    _lease(cache, tmp_path)
    second = _lease(cache, tmp_path)
    assert not second.reused
    assert f"expires-at tag ({past}) has passed" in second.describe()

    synth.expires_at = (datetime.now(UTC) + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _lease(cache, tmp_path)
    assert _lease(cache, tmp_path).reused


def test_no_cache_synthesizes_privately_and_leaves_the_cache_alone(
    cache: SynthCache, synth: FakeSynth, tmp_path: Path
) -> None:
    cached = _lease(cache, tmp_path)
    forced = _lease(cache, tmp_path, use_cache=False)

    assert not forced.reused
    assert not forced.cached
    assert forced.path == (tmp_path / "private").resolve()
    assert "--no-cache" in forced.describe()
    assert [p.name for p in cache.entries()] == [cached.path.parent.name]
    assert _lease(cache, tmp_path).reused


def test_a_failed_synthesis_leaves_nothing_behind(
    cache: SynthCache, synth: FakeSynth, tmp_path: Path, tree: Path
) -> None:
    synth.fail = True
    with pytest.raises(RuntimeError, match="failed to synthesize"):
        _lease(cache, tmp_path)
    assert cache.entries() == []
    assert list(cache.directory.glob(".staging-*")) == []
    synth.fail = False
    assert not _lease(cache, tmp_path).reused
    assert _lease(cache, tmp_path).reused

    # A synthesis that fails for good (the tree is then fixed another way) leaves locks
    # of a key without an entry; the next entry written clears them.
    (tree / "cdk" / "stacks.py").write_text("broken(\n")
    synth.fail = True
    with pytest.raises(RuntimeError):
        _lease(cache, tmp_path)
    broken = input_key(tree, "ephemeral", CONTEXT)[:24]
    assert list((cache.directory / ".locks").glob(f"{broken}.*"))
    (tree / "cdk" / "stacks.py").write_text("fixed = True\n")
    synth.fail = False
    _lease(cache, tmp_path)
    assert list((cache.directory / ".locks").glob(f"{broken}.*")) == []


def test_an_entry_in_use_is_neither_pruned_nor_replaced(
    tree: Path, synth: FakeSynth, tmp_path: Path
) -> None:
    cache = SynthCache(tree, synthesize=synth, keep=1)
    held = cache.lease("ephemeral", CONTEXT, private_dir=tmp_path / "p1")  # a running stack
    (tree / "handlers" / "api.py").write_text("def handler(event, context):\n    return 2\n")
    newer = _lease(cache, tmp_path)
    assert held.path.is_dir(), "an entry a running stack uses was pruned"
    assert newer.path.is_dir()

    # Damaged while in use: synthesized privately, the entry stays for its user.
    (tree / "handlers" / "api.py").write_text(TREE["handlers/api.py"])
    _corrupt_template(held.path.parent)
    private = cache.lease("ephemeral", CONTEXT, private_dir=tmp_path / "p2")
    assert not private.cached
    assert "in use by a running stack" in private.describe()
    assert held.path.is_dir()

    held.release()
    (tree / "handlers" / "api.py").write_text("def handler(event, context):\n    return 3\n")
    _lease(cache, tmp_path)
    assert not held.path.parent.exists(), "a released entry beyond `keep` is pruned"
    assert next(p.name for p in cache.entries()) == input_key(tree, "ephemeral", CONTEXT)[:24]


CONCURRENT_START = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.synth_cache import SynthCache
    from tests.unit.harness.test_synth_cache import FakeSynth

    class SlowSynth(FakeSynth):
        def __call__(self, profile, outdir, context=None, **options):
            with open(sys.argv[2], "a") as calls:
                calls.write("synth\\n")
            time.sleep(1.0)  # long enough for the other process to arrive meanwhile
            return super().__call__(profile, outdir, context, **options)

    cache = SynthCache(Path(sys.argv[1]), synthesize=SlowSynth())
    lease = cache.lease("ephemeral", {"stack_prefix": "local"}, private_dir=Path(sys.argv[3]))
    print(lease.path, lease.reused)
    """
)


def test_two_processes_starting_together_synthesize_once_and_share_the_entry(
    tree: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    script = tmp_path / "start.py"
    script.write_text(CONCURRENT_START)
    starts = [
        subprocess.Popen(
            [sys.executable, str(script), str(tree), str(calls), str(tmp_path / f"p{i}")],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    for process in starts:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        path, reused = out.split()
        results.append((path, reused == "True"))

    assert calls.read_text().count("synth") == 1, "both processes synthesized"
    assert results[0][0] == results[1][0]
    assert sorted(reused for _, reused in results) == [False, True]
    cache = SynthCache(tree)
    key = input_key(tree, "ephemeral", CONTEXT)
    assert check_entry(cache.directory / key[:24], key, "ephemeral") is None


def test_every_first_party_module_the_app_imports_is_an_input() -> None:
    """If the app starts importing another module of this repository, the key must
    cover it, or a change there would reuse a stale assembly."""
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import cdk.app, cdk.build
        root = Path.cwd().resolve()
        files = set()
        for module in list(sys.modules.values()):
            path = Path(getattr(module, "__file__", None) or "/").resolve()
            if root in path.parents and ".venv" not in path.parts:
                files.add(path.relative_to(root).as_posix())
        print(json.dumps(sorted(files)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env_with_node(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    inputs = {relative for relative, _ in input_files(PROJECT_ROOT)}
    assert "cdk/build.py" in imported
    assert imported - inputs == set(), "the app imports files the cache key does not cover"
