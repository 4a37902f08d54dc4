"""Errors of the local CloudFormation engine: each names the stack, the resource and the problem."""

from __future__ import annotations


class CfnError(Exception):
    """Base class: something about the cloud assembly cannot be deployed locally."""


class AssemblyError(CfnError):
    """The cloud assembly itself is unreadable (manifest, template file, asset manifest)."""


class TemplateError(CfnError):
    """A template is wrong or uses something the local cloud does not support.

    ``stack`` and ``logical_id`` say where; ``path`` is the property path inside the
    resource (``Properties.Environment.Variables.QUEUE_URL``) when known.
    """

    def __init__(
        self,
        message: str,
        *,
        stack: str | None = None,
        logical_id: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.stack = stack
        self.logical_id = logical_id
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.stack:
            where.append(f"stack {self.stack}")
        if self.logical_id:
            where.append(f"resource {self.logical_id}")
        if self.path:
            where.append(f"at {self.path}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def located(self, *, stack: str | None = None, logical_id: str | None = None) -> TemplateError:
        """This error with the stack and/or logical id filled in where still unknown."""
        return type(self)(
            self.message,
            stack=self.stack or stack,
            logical_id=self.logical_id or logical_id,
            path=self.path,
        )


class UnsupportedResourceError(TemplateError):
    """One or more resource types the local cloud cannot provision."""


class DeployError(CfnError):
    """Provisioning a resource failed; everything created before it was rolled back."""

    def __init__(self, message: str, *, stack: str, logical_id: str, resource_type: str) -> None:
        self.stack = stack
        self.logical_id = logical_id
        self.resource_type = resource_type
        super().__init__(f"stack {stack}, resource {logical_id} ({resource_type}): {message}")


class UpdateError(CfnError):
    """A change the running stack cannot take in place; the message lists each one."""
