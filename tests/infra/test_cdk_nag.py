"""cdk-nag AwsSolutions on every stack: no unacknowledged finding, no stale acknowledgment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cdk.components.common as common
from cdk.bundling import LambdaAsset
from tests.infra.support import PROFILES, Synthesized, synthesize_in_process


def test_no_unacknowledged_findings(synth: Synthesized) -> None:
    assert synth.nag_error is None
    assert synth.violations == []


def test_every_acknowledgment_has_a_real_reason(synth: Synthesized) -> None:
    assert synth.acknowledgments, "the stacks acknowledge some findings; none were recorded"
    for path, rule, reason in synth.acknowledgments:
        assert rule.startswith("AwsSolutions::AwsSolutions-"), (path, rule)
        assert len(reason.split()) >= 8, (path, rule, reason)


class _IgnoreAcknowledgments:
    """Stands in for ``aws_cdk.Validations`` so that ``acknowledge`` records nothing."""

    @staticmethod
    def of(_construct: Any) -> _IgnoreAcknowledgments:
        return _IgnoreAcknowledgments()

    def acknowledge(self, *_rules: Any) -> None:
        return None


@pytest.mark.parametrize("profile", PROFILES)
def test_each_acknowledgment_covers_a_real_finding_and_all_findings_are_covered(
    profile: str,
    synthesized_profiles: dict[str, Synthesized],
    lambda_asset: LambdaAsset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acknowledged = synthesized_profiles[profile].acknowledgments
    monkeypatch.setattr(common, "Validations", _IgnoreAcknowledgments)
    bare = synthesize_in_process(profile, tmp_path, lambda_asset)
    assert bare.nag_error is not None, "without acknowledgments cdk-nag must report findings"

    findings = {
        (violation["ruleName"], construct["constructPath"])
        for violation in bare.violations
        for construct in violation["violatingConstructs"]
    }

    def covers(ack: tuple[str, str, str], finding: tuple[str, str]) -> bool:
        path, rule, _ = ack
        name, construct_path = finding
        return rule == f"AwsSolutions::{name}" and (
            construct_path == path or construct_path.startswith(path + "/")
        )

    uncovered = [f for f in findings if not any(covers(a, f) for a in acknowledged)]
    stale = [a[:2] for a in acknowledged if not any(covers(a, f) for f in findings)]
    assert uncovered == [], "findings nobody acknowledged"
    assert stale == [], "acknowledgments that match no finding"
