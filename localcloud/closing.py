"""A base for the local cloud's services: ``with Service(...) as s:`` calls ``close()``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ClosesOnExit:
    """Context-manager protocol for anything with a ``close()`` that stops it."""

    def close(self) -> None:
        """Stop the service and release what it holds; safe to call more than once."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
