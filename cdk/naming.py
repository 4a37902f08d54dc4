"""Stack naming rules shared by the CDK app and the CI commands."""

from __future__ import annotations

import re
from typing import Final

# CloudFormation: a stack name starts with a letter, holds letters, digits and hyphens,
# and is at most 128 characters. The longest suffix we add is "-Monitoring" (11), and
# resource names derived from the prefix (queue names ending ".fifo", function names
# limited to 64) need headroom, so a prefix is capped well below the CloudFormation limit.
MAX_PREFIX_LENGTH: Final = 32
STACK_SUFFIXES: Final = ("Queue", "Api", "Monitoring")
_PREFIX_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def validate_stack_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid stack-name prefix, else raise ``ValueError``."""
    if not prefix:
        raise ValueError("stack prefix is empty")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"stack prefix {prefix!r} is {len(prefix)} characters; "
            f"at most {MAX_PREFIX_LENGTH} allowed"
        )
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"stack prefix {prefix!r} must start with a letter and contain only "
            "letters, digits and hyphens (CloudFormation stack-name rules)"
        )
    if prefix.endswith("-") or "--" in prefix:
        raise ValueError(f"stack prefix {prefix!r} must not end with '-' or contain '--'")
    return prefix


def stack_names(prefix: str) -> dict[str, str]:
    """The three stack names for a prefix: ``{"Queue": "<prefix>-Queue", ...}``."""
    validate_stack_prefix(prefix)
    return {suffix: f"{prefix}-{suffix}" for suffix in STACK_SUFFIXES}
