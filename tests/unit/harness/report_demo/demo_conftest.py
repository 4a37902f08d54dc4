"""Registers the QA report plugin for the demo project, as the root conftest does for features."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.reports import FeatureReport


def pytest_configure(config: pytest.Config) -> None:
    report = FeatureReport(Path(os.environ["DEMO_REPORT_DIR"]), "local")
    config.pluginmanager.register(report, "task-api-feature-report")
