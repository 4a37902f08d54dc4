"""What a pytest session's feature run leaves for tests that come after it.

The features start a local stack of their own (``features/conftest.py``). A test that needs
what the whole feature run did on that stack (the least-privilege check reads every AWS
call the functions made) finds it here instead of running every feature a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.local_stack.cloud import LocalDeployment

# The features' own local stack, while the session lasts.
FEATURES_LOCAL_STACK = pytest.StashKey["LocalDeployment"]()
# Node ids of the feature scenarios that passed or were skipped (by their tags or a step).
SETTLED_SCENARIOS = pytest.StashKey[set[str]]()


# Set when ``-k``/``-m`` left some scenario out: the run then did not do everything.
SCENARIOS_LEFT_OUT = pytest.StashKey[bool]()
# The test module pytest-bdd generates the scenarios in.
SCENARIOS_FILE = "features/test_features.py"


def is_scenario(item: pytest.Item) -> bool:
    """A Gherkin scenario (as opposed to another test of the session)."""
    return item.nodeid.startswith(SCENARIOS_FILE + "::")


def whole_feature_run_passed(session: pytest.Session) -> LocalDeployment | None:
    """The features' local stack if every scenario of the features ran on it in this
    session (none left out by ``-k``/``-m``) and passed or was skipped, else None."""
    stack = session.config.stash.get(FEATURES_LOCAL_STACK, None)
    if stack is None or session.config.stash.get(SCENARIOS_LEFT_OUT, False):
        return None
    settled = session.config.stash.get(SETTLED_SCENARIOS, set())
    scenarios = [item.nodeid for item in session.items if is_scenario(item)]
    if not scenarios or any(nodeid not in settled for nodeid in scenarios):
        return None
    return stack
