"""Session fixtures: each profile is synthesized once, in-process, with cdk-nag enabled."""

from __future__ import annotations

import pytest

from cdk.bundling import LambdaAsset, build_lambda_asset
from tests.infra.support import PROFILES, Synthesized, synthesize_in_process


@pytest.fixture(scope="session")
def lambda_asset() -> LambdaAsset:
    """The real asset (pip runs once per requirements change, cached under build/)."""
    return build_lambda_asset()


@pytest.fixture(scope="session")
def synthesized_profiles(
    lambda_asset: LambdaAsset, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Synthesized]:
    """Both profiles, synthesized once per session."""
    return {
        profile: synthesize_in_process(
            profile, tmp_path_factory.mktemp(f"cdk-{profile}"), lambda_asset
        )
        for profile in PROFILES
    }


@pytest.fixture(params=PROFILES)
def synth(
    request: pytest.FixtureRequest, synthesized_profiles: dict[str, Synthesized]
) -> Synthesized:
    """Each test using this runs once per profile."""
    result = synthesized_profiles[request.param]
    assert result.nag_error is None, f"{request.param} synthesis failed: {result.nag_error}"
    return result


@pytest.fixture
def production(synthesized_profiles: dict[str, Synthesized]) -> Synthesized:
    return synthesized_profiles["production"]


@pytest.fixture
def ephemeral(synthesized_profiles: dict[str, Synthesized]) -> Synthesized:
    return synthesized_profiles["ephemeral"]
