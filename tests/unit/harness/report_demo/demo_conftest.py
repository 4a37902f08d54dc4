"""Registers the QA report plugin for the demo project, as the root conftest does for features."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness.reports import FeatureReport


def pytest_configure(config: pytest.Config) -> None:
    # Ctrl-C as a user's shell delivers it, whatever ran the test suite: SIGINT ignored or
    # blocked is inherited across exec, and CPython then never raises KeyboardInterrupt.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report = FeatureReport(Path(os.environ["DEMO_REPORT_DIR"]), "local")
    config.pluginmanager.register(report, "task-api-feature-report")
