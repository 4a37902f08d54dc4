"""Run mutants: each on a fresh local stack built from a mutated copy, against its features.

For each mutant:

1. the stack's cloud assembly: a mutant that changes only ``handlers/`` gets a hard-linked
   copy of the profile's assembly synthesized once from the clean tree, with the mutated
   files written into the copy's Lambda asset; a mutant that changes the CDK app is
   synthesized from a temporary copy of the tree with the patch applied (the Lambda
   dependencies come from the project's bundling cache);
2. ``pytest features -m <tags> -x --assembly <it>`` in a subprocess, from the unmutated
   tree: the features' session fixture deploys the assembly on a fresh local stack (its
   own process, so nothing of another mutant's stack is left in moto) and stops it;
3. the verdict (:func:`classify`): **killed** when a step of a scenario fails (the first
   one is named), **survived** when every selected scenario passes, an **error** when the
   stack did not build, deploy or start (the QA report marks such a failure: cause
   ``stack not deployed``), stopped answering, nothing ran, or the run broke otherwise. A
   mutant declaring ``refused_at_deploy`` is killed when its deployment is refused with
   that text, as AWS refuses it.

The working tree is never edited.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from cdk.node import env_with_node
from harness.mutate.catalogue import Mutant, Profile
from harness.reports.model import IAM_REFUSED, NOT_DEPLOYED, NOT_DEPLOYED_MESSAGE, UNREACHABLE

Outcome = Literal["killed", "survived", "error"]
# What a synthesis of a mutated tree needs: the CDK app, the handlers it bundles, the
# harness module it imports for Node, and the CDK context file.
_TREE_PARTS: Final = ("cdk", "handlers", "harness", "cdk.json")
_IGNORED: Final = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
_STACK_PREFIX: Final = "local"
_INTERRUPT_GRACE_S: Final = 30.0
# The "scenario" that kills a mutant whose deployment is refused as it declares.
REFUSED_AT_DEPLOY: Final = "the deployment (refused, as AWS refuses it)"


@dataclass(frozen=True)
class MutantResult:
    """What happened to one mutant."""

    name: str
    promise: str
    profile: Profile
    outcome: Outcome
    seconds: float
    scenario: str = ""
    """The scenario that killed it (killed), or what went wrong (error)."""
    feature: str = ""
    reason: str = ""
    scenarios_run: int = 0


class MutationRunner:
    """Runs mutants of the tree at ``root``, keeping its work under ``work_dir``."""

    def __init__(
        self,
        root: Path,
        work_dir: Path,
        *,
        on_progress: Callable[[str], None] = print,
        run_timeout_s: float = 900.0,
    ) -> None:
        self.root = root.resolve()
        self.work_dir = work_dir
        self.progress = on_progress
        self.run_timeout_s = run_timeout_s
        self._bases: dict[str, Path] = {}

    # --- assemblies -------------------------------------------------------------------

    def base_assembly(self, profile: Profile) -> Path:
        """The profile's assembly synthesized from the clean tree (once per run)."""
        if profile not in self._bases:
            from cdk.synth import synthesize

            started = time.monotonic()
            self._bases[profile] = synthesize(
                profile, self.work_dir / f"base-{profile}", {"stack_prefix": _STACK_PREFIX}
            )
            self.progress(
                f"    synthesized the {profile} profile from the clean tree "
                f"in {time.monotonic() - started:.1f}s"
            )
        return self._bases[profile]

    def assembly_for(self, mutant: Mutant, directory: Path) -> Path:
        """The cloud assembly of the stack with ``mutant`` applied, built under ``directory``."""
        if mutant.touches_infrastructure:
            tree = self.copy_tree(directory / "tree")
            mutant.apply_to(tree)
            return _synthesize_tree(tree, mutant.profile, directory / "cdk.out")
        texts = mutant.mutated(self.root)
        assembly = directory / "cdk.out"
        shutil.copytree(self.base_assembly(mutant.profile), assembly, copy_function=_link)
        assets = [path.parent for path in assembly.glob("asset.*/handlers")]
        if not assets:
            raise RuntimeError(f"no Lambda asset with handlers/ in {assembly}")
        for asset in assets:
            for file, text in texts.items():
                target = asset / file
                target.unlink()  # a hard link to the base assembly: give it its own file
                target.write_text(text, encoding="utf-8")
        return assembly

    def copy_tree(self, destination: Path) -> Path:
        """A temporary copy of what synthesis needs, sharing the Lambda dependency cache."""
        destination.mkdir(parents=True)
        for part in _TREE_PARTS:
            source = self.root / part
            if source.is_dir():
                shutil.copytree(source, destination / part, ignore=_IGNORED)
            else:
                shutil.copy2(source, destination / part)
        deps = self.root / "build" / "lambda-assets" / "deps"
        if deps.is_dir():
            cache = destination / "build" / "lambda-assets"
            cache.mkdir(parents=True)
            (cache / "deps").symlink_to(deps, target_is_directory=True)
        return destination

    # --- running ----------------------------------------------------------------------

    def run(self, mutant: Mutant) -> MutantResult:
        """Build the mutant's stack, run its scenarios, return the verdict."""
        started = time.monotonic()
        directory = self.work_dir / mutant.name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        try:
            try:
                assembly = self.assembly_for(mutant, directory)
            except Exception as error:  # synthesis refused the mutated app, most often
                why = _last_line(str(error))
                return self._result(
                    mutant, started, Verdict("error", "the stack did not build", why)
                )
            return self._run_features(mutant, assembly, directory, started)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def run_baseline(self, profile: Profile, tags: str) -> MutantResult:
        """The same scenarios against the unmutated stack: every one must pass (outcome
        ``survived``), or no mutant's verdict on this profile means anything."""
        started = time.monotonic()
        clean = Mutant(
            name=f"baseline-{profile}",
            promise="none: the unmutated tree",
            tags=tags,
            profile=profile,
            patches=(),
        )
        directory = self.work_dir / clean.name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        try:
            return self._run_features(clean, self.base_assembly(profile), directory, started)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _run_features(
        self, mutant: Mutant, assembly: Path, directory: Path, started: float
    ) -> MutantResult:
        report_dir = directory / "report"
        log = directory / "pytest.log"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "-m",
            mutant.tags,
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--assembly",
            str(assembly),
            "--report-dir",
            str(report_dir),
        ]
        with log.open("w", encoding="utf-8") as output:
            code = _run_bounded(command, cwd=self.root, output=output, timeout_s=self.run_timeout_s)
        verdict = classify(mutant, code, _summary(report_dir), _tail(log))
        return self._result(mutant, started, verdict)

    @staticmethod
    def _result(mutant: Mutant, started: float, verdict: Verdict) -> MutantResult:
        return MutantResult(
            name=mutant.name,
            promise=mutant.promise,
            profile=mutant.profile,
            outcome=verdict.outcome,
            seconds=time.monotonic() - started,
            scenario=verdict.scenario,
            feature=verdict.feature,
            reason=verdict.reason,
            scenarios_run=verdict.scenarios_run,
        )


@dataclass(frozen=True)
class Verdict:
    """What one feature run proves about a mutant (see :func:`classify`)."""

    outcome: Outcome
    scenario: str = ""
    """The scenario that killed it (killed), or what went wrong (error)."""
    reason: str = ""
    feature: str = ""
    scenarios_run: int = 0


def classify(mutant: Mutant, code: int, summary: Mapping[str, Any], tail: str) -> Verdict:
    """The verdict on ``mutant`` from its feature run: pytest's exit ``code``, the QA
    report's ``summary.json`` and the last line of pytest's output.

    A scenario that failed because the stack was not deployed (cause
    :data:`NOT_DEPLOYED`, set from the features' :class:`StackNotDeployedError`) or
    stopped answering proves nothing: an error, except for a mutant AWS refuses to deploy
    (``refused_at_deploy``) refused with that text. Otherwise the first failed scenario
    kills it, provided one of its steps failed (not its setup).
    """
    scenarios: list[Mapping[str, Any]] = list(summary.get("scenarios", []))
    ran = [s for s in scenarios if s["outcome"] != "skipped"]
    failures = [s for s in scenarios if s["outcome"] == "failed"]
    broken = next((s for s in failures if s.get("cause") == NOT_DEPLOYED), None)
    if broken is not None:
        why = _one_line(str(broken.get("message", "")).removeprefix(NOT_DEPLOYED_MESSAGE))
        if mutant.refused_at_deploy and mutant.refused_at_deploy in why:
            # The promise is kept before any scenario could run, as on AWS.
            return Verdict(
                "killed",
                REFUSED_AT_DEPLOY,
                why,
                feature=broken["feature_file"],
            )
        return Verdict("error", "the stack did not deploy", why)
    unreachable = next((s for s in failures if s.get("cause") == UNREACHABLE), None)
    if unreachable is not None:
        why = _one_line(str(unreachable.get("message", "")))
        return Verdict("error", "the stack stopped answering", why)
    if code == 1:
        failed = failures[0] if failures else None
        if failed is None or not any(step["status"] == "failed" for step in failed["steps"]):
            why = _last_line(failed["detail"]) if failed else tail
            return Verdict("error", "no step ran (the scenario failed in its setup)", why)
        return Verdict(
            "killed",
            failed["name"],
            _reason(failed["detail"]),
            feature=failed["feature_file"],
            scenarios_run=len(ran),
        )
    if code == 0 and ran:
        return Verdict("survived", scenarios_run=len(ran))
    what = "no scenario ran" if code in (0, 5) else f"pytest exited with code {code}"
    return Verdict("error", what, _last_line(tail))


def baseline_tags(mutants: Sequence[Mutant]) -> dict[Profile, str]:
    """Per profile, the ``-m`` expression selecting every scenario some mutant runs."""
    by_profile: dict[Profile, list[str]] = {}
    for mutant in mutants:
        expressions = by_profile.setdefault(mutant.profile, [])
        if mutant.tags not in expressions:
            expressions.append(mutant.tags)
    return {
        profile: " or ".join(f"({tags})" for tags in tags_list)
        for profile, tags_list in by_profile.items()
    }


def run_catalogue(
    mutants: Sequence[Mutant],
    runner: MutationRunner,
    *,
    on_result: Callable[[int, Mutant, MutantResult], None] | None = None,
) -> list[MutantResult]:
    """Run every mutant in order (progress through ``runner.progress``)."""
    results = []
    for index, mutant in enumerate(mutants, 1):
        runner.progress(
            f"[{index:>2}/{len(mutants)}] {mutant.name} ({mutant.profile}; -m {mutant.tags})"
        )
        result = runner.run(mutant)
        results.append(result)
        if on_result is not None:
            on_result(index, mutant, result)
    return results


def describe(result: MutantResult) -> str:
    """One line for the terminal."""
    if result.outcome == "killed":
        # The calls IAM refused (the cause) are kept whole; the assertion is shortened.
        assertion, iam, refused = result.reason.partition(f" [{IAM_REFUSED}")
        # A refused deployment's error names the stack and resource before the refusal.
        limit = 500 if result.scenario == REFUSED_AT_DEPLOY else 160
        return (
            f"    KILLED in {result.seconds:.1f}s by {result.scenario!r} ({result.feature}): "
            f"{assertion[:limit]}{iam}{refused}"
        )
    if result.outcome == "survived":
        return (
            f"    SURVIVED in {result.seconds:.1f}s: {result.scenarios_run} scenario(s) "
            f"passed with the promise broken ({result.promise})"
        )
    # A deployment's error names the stack and resource before the refusal itself.
    return f"    ERROR after {result.seconds:.1f}s: {result.scenario}: {result.reason[:500]}"


def _synthesize_tree(tree: Path, profile: Profile, outdir: Path) -> Path:
    """Synthesize the CDK app of ``tree`` (its own ``cdk`` package, not this process's)."""
    script = (
        "import json, sys; from pathlib import Path; from cdk.synth import synthesize; "
        "synthesize(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            profile,
            str(outdir),
            json.dumps({"stack_prefix": _STACK_PREFIX}),
        ],
        cwd=tree,
        env=env_with_node(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesis failed: {(result.stderr or result.stdout).strip()}")
    return outdir


def _run_bounded(command: list[str], *, cwd: Path, output: Any, timeout_s: float) -> int:
    """Run ``command`` in its own process group; interrupt it cleanly on timeout or Ctrl-C."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env_with_node(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(process)
        output.write(f"\n[harness mutate] stopped after {timeout_s:.0f}s\n")
        return -1
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[Any]) -> None:
    """SIGINT (pytest tears its local stack down), then SIGKILL the group if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=_INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _summary(report_dir: Path) -> dict[str, Any]:
    try:
        summary: dict[str, Any] = json.loads((report_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary


def _tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _reason(detail: str) -> str:
    """Why a scenario failed: its assertion, then the calls the local cloud refused a
    function's role meanwhile, if any (the cause a symptom such as a 503 hides)."""
    refused = [
        line.strip()[len(IAM_REFUSED) :].strip()
        for line in detail.splitlines()
        if line.strip().startswith(IAM_REFUSED)
    ]
    reason = _last_line(detail)
    return f"{reason} [{IAM_REFUSED} {'; '.join(refused)}]" if refused else reason


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # pytest's failure text ends with "E   <the assertion>" lines; the first E line says most.
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[0] if errors else (lines[-1] if lines else "")


def _link(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
