"""Updating a deployed assembly from a newer one, where that is safe without a restart.

The engine creates and deletes; it does not replace resources or migrate their state. One
kind of change can still be applied to a running stack: a Lambda function's code and the
configuration ``UpdateFunctionCode``/``UpdateFunctionConfiguration`` change on AWS without
replacing the function (its code, environment, handler, timeout, memory, reserved
concurrency, runtime, description). The local Lambda service swaps those in place: calls
in flight finish on the old code, the next ones cold-start on the new.

:func:`plan_update` compares the deployed templates with the new assembly's and sorts the
differences into changes it can apply and blockers, each naming the stack, the resource
and what changed (a resource added or removed, a queue's property, an output, ...), which
need a restart. Differences that change nothing running are ignored: resource metadata
(CDK's construct paths, asset paths), ``DependsOn`` and deletion policies, the template's
description and rules, and the ``expires-at`` stack tag (computed at synthesis).
:func:`apply_update` applies a plan without blockers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from localcloud.cfn.assembly import CloudAssembly, StackArtifact
from localcloud.cfn.engine import (
    DeployedAssembly,
    DeployedStack,
    _label,
    _parameter_values,
    _StackResources,
)
from localcloud.cfn.errors import TemplateError, UpdateError
from localcloud.cfn.intrinsics import Resolver
from localcloud.cfn.providers import PROVIDERS
from localcloud.cfn.providers.base import DeploymentState, ProviderContext
from localcloud.specs import FunctionSpec

HOT_SWAPPABLE: Final[Mapping[str, frozenset[str]]] = {
    "AWS::Lambda::Function": frozenset(
        {
            "Code",
            "Description",
            "Environment",
            "Handler",
            "MemorySize",
            "ReservedConcurrentExecutions",
            "Runtime",
            "Timeout",
        }
    ),
}
"""Per resource type, the properties the local cloud can change on a running resource."""

_INERT_RESOURCE_KEYS: Final = frozenset(
    {"Metadata", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy"}
)
_INERT_SECTIONS: Final = frozenset(
    {"Resources", "Metadata", "Description", "Rules", "AWSTemplateFormatVersion"}
)
_INERT_TAGS: Final = frozenset({"expires-at"})


@dataclass(frozen=True)
class ResourceChange:
    """A resource whose changed ``properties`` can be applied in place."""

    stack_name: str
    logical_id: str
    resource_type: str
    label: str  # "ApiFunction (ApiFunctionCE271BD4)", as deploy progress lines show it
    properties: tuple[str, ...]


@dataclass(frozen=True)
class UpdatePlan:
    """What differs between the deployed assembly and ``assembly``."""

    assembly: CloudAssembly
    changes: tuple[ResourceChange, ...]
    blockers: tuple[str, ...]
    """One line per difference the running stack cannot take: it needs a restart."""


def _changed_keys(
    old: Mapping[str, Any], new: Mapping[str, Any], ignored: frozenset[str]
) -> list[str]:
    return sorted(k for k in set(old) | set(new) if k not in ignored and old.get(k) != new.get(k))


def _diff_stack(old: StackArtifact, new: StackArtifact) -> tuple[list[ResourceChange], list[str]]:
    name = new.stack_name
    blockers = [
        f"{name}: the template's {section} changed"
        for section in _changed_keys(old.template, new.template, _INERT_SECTIONS)
    ]
    tags = _changed_keys(old.tags, new.tags, _INERT_TAGS)
    if tags:
        blockers.append(f"{name}: stack tags changed ({', '.join(tags)})")
    if dict(old.parameters) != dict(new.parameters):
        blockers.append(f"{name}: stack parameters changed")
    old_resources: Mapping[str, Any] = old.template.get("Resources") or {}
    new_resources: Mapping[str, Any] = new.template.get("Resources") or {}
    changes: list[ResourceChange] = []
    for logical_id in sorted(set(old_resources) | set(new_resources)):
        before, after = old_resources.get(logical_id), new_resources.get(logical_id)
        declaration: Mapping[str, Any] = after or before or {}
        kind = str(declaration.get("Type"))
        label = f"{name}/{_label(declaration, name, logical_id)} ({kind})"
        if before is None:
            blockers.append(f"{label} added")
            continue
        if after is None:
            blockers.append(f"{label} removed")
            continue
        keys = _changed_keys(before, after, _INERT_RESOURCE_KEYS)
        if not keys:
            continue
        if keys != ["Properties"]:
            blockers.append(f"{label}: {', '.join(keys)} changed")
            continue
        properties = _changed_keys(
            before.get("Properties") or {}, after.get("Properties") or {}, frozenset()
        )
        fixed = [p for p in properties if p not in HOT_SWAPPABLE.get(kind, frozenset())]
        if fixed:
            blockers.append(f"{label}: {', '.join(fixed)} changed")
            continue
        changes.append(
            ResourceChange(
                stack_name=name,
                logical_id=logical_id,
                resource_type=kind,
                label=_label(declaration, name, logical_id),
                properties=tuple(properties),
            )
        )
    return changes, blockers


def plan_update(deployed: DeployedAssembly, assembly_dir: Path) -> UpdatePlan:
    """Compare the deployed assembly with the one in ``assembly_dir``; changes nothing."""
    assembly = CloudAssembly.load(Path(assembly_dir))
    old = {stack.stack_name: stack for stack in deployed.assembly.stacks}
    new = {stack.stack_name: stack for stack in assembly.stacks}
    blockers = [f"stack {name} added" for name in sorted(set(new) - set(old))]
    blockers += [f"stack {name} removed" for name in sorted(set(old) - set(new))]
    changes: list[ResourceChange] = []
    for name in sorted(set(old) & set(new)):
        stack_changes, stack_blockers = _diff_stack(old[name], new[name])
        changes += stack_changes
        blockers += stack_blockers
    return UpdatePlan(assembly=assembly, changes=tuple(changes), blockers=tuple(blockers))


def _deployed_stack(deployed: DeployedAssembly, name: str) -> DeployedStack:
    for stack in deployed.stacks:
        if stack.name == name:
            return stack
    raise KeyError(name)


def _function_spec(
    deployed: DeployedAssembly, plan: UpdatePlan, change: ResourceChange
) -> tuple[FunctionSpec, DeploymentState]:
    """The function as the new template declares it, resolved against what is deployed."""
    artifact = next(s for s in plan.assembly.stacks if s.stack_name == change.stack_name)
    stack = _deployed_stack(deployed, artifact.stack_name)
    declarations: Mapping[str, Any] = artifact.template.get("Resources") or {}
    resolver = Resolver(
        stack_name=artifact.stack_name,
        region=deployed.region,
        account_id=deployed.account_id,
        parameters=_parameter_values(artifact, deployed._clients),
        conditions=artifact.template.get("Conditions") or {},
        mappings=artifact.template.get("Mappings") or {},
        resources=_StackResources(stack, {k: str(d["Type"]) for k, d in declarations.items()}),
        imports=deployed.exports.get,
        resource_ids=set(declarations),
    )
    properties = resolver.resolve(
        declarations[change.logical_id].get("Properties") or {},
        logical_id=change.logical_id,
        path="Properties",
    )
    # Keep the name it runs under: the template may leave it to the engine's generator.
    properties.setdefault("FunctionName", stack.resources[change.logical_id].physical_id)
    state = DeploymentState()
    ctx = ProviderContext(
        stack_name=artifact.stack_name,
        logical_id=change.logical_id,
        region=deployed.region,
        account_id=deployed.account_id,
        clients=deployed._clients,
        assembly=plan.assembly,  # the code asset is the new assembly's
        state=state,
        stack_tags=artifact.tags,
    )
    PROVIDERS[change.resource_type].create(ctx, properties)
    return state.functions[0], state


def apply_update(
    deployed: DeployedAssembly,
    plan: UpdatePlan,
    update_function: Callable[[FunctionSpec], None],
) -> list[FunctionSpec]:
    """Apply a plan without blockers: every changed function is resolved first (nothing
    changes if one fails), then handed to ``update_function``. Afterwards ``deployed``
    describes the new assembly. Returns the new specs."""
    if plan.blockers:
        raise UpdateError("the update needs a restart: " + "; ".join(plan.blockers))
    resolved: list[FunctionSpec] = []
    for change in plan.changes:
        try:
            spec, state = _function_spec(deployed, plan, change)
        except TemplateError as error:
            raise error.located(stack=change.stack_name, logical_id=change.logical_id) from None
        deployed._state.temp_dirs.extend(state.temp_dirs)
        resolved.append(spec)
    for spec in resolved:
        update_function(spec)
    by_name = {spec.function_name: spec for spec in resolved}
    deployed.functions = [by_name.get(f.function_name, f) for f in deployed.functions]
    deployed.assembly = plan.assembly
    return resolved
