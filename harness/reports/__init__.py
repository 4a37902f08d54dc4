"""QA reports for the Gherkin suite: a self-contained HTML page, ``summary.json`` and a
terminal summary, written by the pytest plugin :class:`FeatureReport`.

- :mod:`harness.reports.plugin`: the plugin (outcomes, messages, the run's environment);
- :mod:`harness.reports.recording`: each scenario's HTTP requests and AWS calls;
- :mod:`harness.reports.page`: ``features.html``;
- :mod:`harness.reports.model`: what they share.
"""

from harness.reports.model import RunInfo, ScenarioResult, StepResult
from harness.reports.plugin import FeatureReport

__all__ = ["FeatureReport", "RunInfo", "ScenarioResult", "StepResult"]
