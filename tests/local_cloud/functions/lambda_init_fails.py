"""A handler module whose import fails, like a function whose dependencies are missing."""

from __future__ import annotations

import importlib
from typing import Any

importlib.import_module("a_module_that_is_not_installed_anywhere")


def handler(event: dict[str, Any], context: Any) -> Any:  # pragma: no cover - never imported
    """Never reached."""
    return event
