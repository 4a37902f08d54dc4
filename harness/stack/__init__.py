"""Ephemeral AWS stacks for CI: deploy per run, verify, always tear down, reap what leaked.

Modules: ``naming`` (stack prefixes from the CI context), ``guards`` (what we refuse to
touch), ``cloud`` (the CloudFormation/Logs/STS calls), ``cdk`` and ``process`` (running the
CDK CLI and children that stop cleanly on SIGINT/SIGTERM), ``deploy``, ``destroy``,
``reap``, ``verify`` and ``cli`` (the ``harness stack`` commands).
"""

from __future__ import annotations

from typing import Final

# Exit codes of the ``harness stack`` commands and of ``verify_aws``.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # something we tried did not work (deploy, tests, a delete)
EXIT_REFUSED: Final = 3  # a guard rail refused to act (protected account, production name, ...)
# Interrupted by a signal: 128 + signal number (130 for SIGINT, 143 for SIGTERM), as shells do.
