"""Deploying a cloud assembly onto the local cloud, the way CloudFormation would.

``deploy_assembly`` first checks the whole assembly without creating anything (resource
types, intrinsic functions, references, parameters, cycles, code assets), then creates
the stacks in dependency order and each stack's resources in dependency order: through
boto3 at the endpoint for what moto and the SQS engine serve, as specs for what the
local cloud runs itself (functions, event source mappings, REST APIs, alarms), which go
to ``LocalServices`` once every stack is provisioned. On any failure everything created
is deleted again and the error names the stack, the resource and the problem.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from localcloud.cfn.assembly import CloudAssembly, StackArtifact
from localcloud.cfn.errors import (
    CfnError,
    DeployError,
    TemplateError,
    UnsupportedResourceError,
)
from localcloud.cfn.graph import CycleError, topological_order
from localcloud.cfn.intrinsics import (
    PSEUDO_PARAMETERS,
    Reference,
    Resolver,
    as_string,
    scan,
)
from localcloud.cfn.providers import PROVIDERS
from localcloud.cfn.providers.apigateway import build_rest_api_specs
from localcloud.cfn.providers.base import (
    Clients,
    DeployedResource,
    DeploymentState,
    NeedsDeployment,
    ProviderContext,
    ValidationContext,
)
from localcloud.specs import (
    AlarmSpec,
    EventSourceMappingSpec,
    FunctionSpec,
    LocalServices,
    RestApiSpec,
)

DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account
Progress = Callable[[str], None]

# The version CDK's BootstrapVersion parameter reads from SSM. It only feeds the
# CheckBootstrapVersion rule (ignored below); any recent version number will do.
_CDK_BOOTSTRAP_VERSION: Final = "30"
_CDK_BOOTSTRAP_VERSION_PARAMETER: Final = re.compile(r"^/cdk-bootstrap/[^/]+/version$")
_SSM_PARAMETER_TYPE: Final = re.compile(r"^AWS::SSM::Parameter::Value<(?P<inner>.+)>$")
# The URL CDK emits for a stage (``RestApi.url``), rewritten in outputs to the local one.
_EXECUTE_API_URL: Final = re.compile(
    r"https://(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com/(?P<stage>[^/\s]+)/"
)
_CONNECTION_ERRORS: Final = (EndpointConnectionError, ConnectionClosedError, ConnectionError)


# -- results -----------------------------------------------------------------------


@dataclass
class DeployedStack:
    """One stack as deployed: its resources in creation order and its outputs."""

    name: str
    artifact_id: str
    resources: dict[str, DeployedResource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # as resolved, before URL rewriting
    exports: dict[str, str] = field(default_factory=dict)


class DeployedAssembly:
    """What ``deploy_assembly`` created; ``destroy()`` (or leaving the ``with``) deletes it."""

    def __init__(
        self,
        *,
        stacks: list[DeployedStack],
        state: DeploymentState,
        rest_apis: list[RestApiSpec],
        api_urls: dict[tuple[str, str], str],
        clients: Clients,
        on_progress: Progress | None,
        deploy_seconds: float,
        assembly: CloudAssembly,
        region: str,
        account_id: str,
    ) -> None:
        self.stacks = stacks
        self.assembly = assembly
        """The cloud assembly deployed (the newer one after ``localcloud.cfn.update``)."""
        self.region = region
        self.account_id = account_id
        self.functions: list[FunctionSpec] = list(state.functions)
        self.event_source_mappings: list[EventSourceMappingSpec] = list(state.event_source_mappings)
        self.alarms: list[AlarmSpec] = list(state.alarms)
        self.rest_apis = rest_apis
        self.api_urls = api_urls  # (api id, stage) -> local URL from LocalServices.add_rest_api
        self.deploy_seconds = deploy_seconds
        self._state = state
        self._clients = clients
        self._on_progress = on_progress
        self._destroyed = False
        self.outputs: dict[str, dict[str, str]] = {
            stack.name: {
                key: rewrite_api_urls(value, api_urls) for key, value in stack.outputs.items()
            }
            for stack in stacks
        }
        """``{StackName: {OutputKey: value}}``, the shape of ``cdk deploy --outputs-file``."""

    @property
    def physical_resources(self) -> dict[str, dict[str, str]]:
        """``{StackName: {LogicalId: physical id}}`` (the ``Ref`` value of each resource)."""
        return {
            stack.name: {lid: res.physical_id for lid, res in stack.resources.items()}
            for stack in self.stacks
        }

    @property
    def exports(self) -> dict[str, str]:
        """Every stack's exports (``Fn::ImportValue`` names to values)."""
        return {name: value for stack in self.stacks for name, value in stack.exports.items()}

    @property
    def resource_types(self) -> set[str]:
        """Every resource type deployed."""
        return {res.resource_type for stack in self.stacks for res in stack.resources.values()}

    def resource(self, stack_name: str, logical_id: str) -> DeployedResource:
        """One deployed resource."""
        for stack in self.stacks:
            if stack.name == stack_name:
                return stack.resources[logical_id]
        raise KeyError(stack_name)

    def destroy(self) -> list[str]:
        """Delete what was created through boto3, newest first; returns the problems met.

        Tolerates an endpoint that is already stopped (the remaining deletions are
        skipped) and resources already gone. Calling it twice does nothing the second
        time. The local services are not touched: their owner stops them.
        """
        if self._destroyed:
            return []
        self._destroyed = True
        resources = [res for stack in self.stacks for res in stack.resources.values()]
        return _delete_all(resources, self._clients, self._state, self._on_progress)

    def __enter__(self) -> DeployedAssembly:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()


def rewrite_api_urls(value: str, api_urls: Mapping[tuple[str, str], str]) -> str:
    """Replace ``https://<api>.execute-api.<region>.amazonaws.com/<stage>/`` by the local URL.

    CDK renders a stage's URL from the API id, region and URL suffix; on the local cloud
    nothing answers there, so outputs (``ApiUrl`` and CDK's own ``...Endpoint...``) carry
    the URL the local API Gateway serves instead. Only URLs of APIs deployed here, in
    outputs, are rewritten: the template stays the single source of truth for the rest.
    """

    def replace(match: re.Match[str]) -> str:
        return api_urls.get((match.group("api"), match.group("stage")), match.group(0))

    return _EXECUTE_API_URL.sub(replace, value)


# -- planning (no side effects) -------------------------------------------------------


@dataclass
class _StackPlan:
    artifact: StackArtifact
    account_id: str
    parameters: dict[str, Any]
    order: list[str]  # logical ids, dependencies first

    @property
    def name(self) -> str:
        return self.artifact.stack_name

    @property
    def resources(self) -> Mapping[str, Any]:
        return self.artifact.template.get("Resources") or {}


class _Unresolvable:
    """Resource lookups before deployment: nothing exists yet."""

    def ref(self, logical_id: str) -> Any:
        raise NeedsDeployment(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise NeedsDeployment(f"{logical_id}.{attribute}")


def _no_imports(name: str) -> str | None:
    raise NeedsDeployment(name)


def _parameter_values(stack: StackArtifact, clients: Clients) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, declaration in (stack.template.get("Parameters") or {}).items():
        where = {"stack": stack.stack_name, "path": f"Parameters.{name}"}
        kind = str(declaration.get("Type", "String"))
        if name in stack.parameters:
            raw: Any = stack.parameters[name]
        elif "Default" in declaration:
            raw = declaration["Default"]
        else:
            raise TemplateError(
                f"parameter {name!r} has no value (no Default, none given in the manifest)",
                **where,
            )
        ssm = _SSM_PARAMETER_TYPE.match(kind)
        if ssm:
            raw = _ssm_parameter(str(raw), clients, where)
            kind = ssm.group("inner")
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            value: Any = [item.strip() for item in str(raw).split(",")]
        else:
            value = as_string(raw, f"parameter {name}")
        allowed = declaration.get("AllowedValues")
        if allowed and value not in [as_string(item, "AllowedValues") for item in allowed]:
            raise TemplateError(f"parameter {name!r} = {value!r} is not one of {allowed}", **where)
        values[name] = value
    return values


def _ssm_parameter(parameter: str, clients: Clients, where: dict[str, str]) -> str:
    if _CDK_BOOTSTRAP_VERSION_PARAMETER.match(parameter):
        return _CDK_BOOTSTRAP_VERSION
    try:
        return str(clients.ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except (ClientError, BotoCoreError) as error:
        raise TemplateError(
            f"SSM parameter {parameter!r} cannot be read from the local endpoint: {error}", **where
        ) from None


def _scan(value: object, path: str, stack_name: str, logical_id: str | None) -> list[Reference]:
    try:
        return list(scan(value, path))
    except TemplateError as error:
        raise error.located(stack=stack_name, logical_id=logical_id) from None


def _depends_on(declaration: Mapping[str, Any]) -> list[str]:
    value = declaration.get("DependsOn") or []
    return [value] if isinstance(value, str) else [str(item) for item in value]


def _check_reference(
    reference: Reference,
    *,
    stack: StackArtifact,
    logical_id: str | None,
    parameters: Mapping[str, Any],
    allow_resources: bool,
    known_exports: set[str] | None,
) -> None:
    template = stack.template
    resources: Mapping[str, Any] = template.get("Resources") or {}

    def fail(message: str) -> TemplateError:
        return TemplateError(
            message, stack=stack.stack_name, logical_id=logical_id, path=reference.path or None
        )

    target = reference.target
    if reference.kind == "Ref":
        if target in PSEUDO_PARAMETERS or target in parameters:
            return
        if target in resources and allow_resources:
            return
        if target in resources:
            raise fail(f"conditions cannot refer to resource {target!r}")
        raise fail(f"Ref to unknown resource or parameter {target!r}")
    if reference.kind == "GetAtt":
        if not allow_resources:
            raise fail(f"conditions cannot refer to resource {target!r}")
        if target not in resources:
            raise fail(f"Fn::GetAtt of unknown resource {target!r}")
        resource_type = str(resources[target].get("Type"))
        provider = PROVIDERS.get(resource_type)
        if provider and reference.attribute and reference.attribute not in provider.attributes:
            supported = ", ".join(sorted(provider.attributes)) or "none"
            raise fail(
                f"Fn::GetAtt {target}.{reference.attribute}: {resource_type} has no attribute "
                f"{reference.attribute!r} in the local cloud (supported: {supported})"
            )
    elif reference.kind == "Condition":
        if target not in (template.get("Conditions") or {}):
            raise fail(f"unknown condition {target!r}")
    elif reference.kind == "FindInMap":
        if target not in (template.get("Mappings") or {}):
            raise fail(f"Fn::FindInMap of unknown mapping {target!r}")
    elif (
        reference.kind == "ImportValue"
        and known_exports is not None
        and target not in known_exports
    ):
        raise fail(
            f"Fn::ImportValue {target!r}: no stack deployed before this one exports that name"
        )


def _plan_stack(
    stack: StackArtifact,
    *,
    region: str,
    account_id: str,
    clients: Clients,
    assembly: CloudAssembly,
    known_exports: set[str] | None,
) -> tuple[_StackPlan, set[str] | None]:
    """Validate one stack; returns its plan and the export names known after it."""
    name = stack.stack_name
    template = stack.template
    if stack.region and stack.region != region:
        raise TemplateError(
            f"the stack is bound to region {stack.region}; the local cloud runs {region}",
            stack=name,
        )
    if stack.account and stack.account != account_id:
        raise TemplateError(
            f"the stack is bound to account {stack.account}; the local cloud is account "
            f"{account_id}",
            stack=name,
        )
    if "Transform" in template:
        raise TemplateError(
            f"template transforms ({template['Transform']}) are not supported by the local cloud",
            stack=name,
        )
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError("the template has no Resources", stack=name)
    for logical_id, declaration in resources.items():
        if not isinstance(declaration, dict) or "Type" not in declaration:
            raise TemplateError("resource has no Type", stack=name, logical_id=logical_id)
    parameters = _parameter_values(stack, clients)
    # Rules (CDK's CheckBootstrapVersion) are assertions CloudFormation checks before a
    # deployment; they create nothing and only concern the real bootstrap stack, so the
    # local cloud does not evaluate them.
    for condition, definition in (template.get("Conditions") or {}).items():
        for reference in _scan(definition, f"Conditions.{condition}", name, None):
            _check_reference(
                reference,
                stack=stack,
                parameters=parameters,
                logical_id=None,
                allow_resources=False,
                known_exports=None,
            )
    depends: dict[str, set[str]] = {}
    for logical_id, declaration in resources.items():
        references = _scan(declaration.get("Properties") or {}, "Properties", name, logical_id)
        for reference in references:
            _check_reference(
                reference,
                stack=stack,
                parameters=parameters,
                logical_id=logical_id,
                allow_resources=True,
                known_exports=known_exports,
            )
        if "Condition" in declaration and declaration["Condition"] not in (
            template.get("Conditions") or {}
        ):
            raise TemplateError(
                f"unknown condition {declaration['Condition']!r}",
                stack=name,
                logical_id=logical_id,
                path="Condition",
            )
        explicit = _depends_on(declaration)
        for dependency in explicit:
            if dependency not in resources:
                raise TemplateError(
                    f"DependsOn names unknown resource {dependency!r}",
                    stack=name,
                    logical_id=logical_id,
                    path="DependsOn",
                )
        depends[logical_id] = {
            ref.target
            for ref in references
            if ref.kind in ("Ref", "GetAtt") and ref.target in resources
        } | set(explicit)
    try:
        order = topological_order(list(resources), depends)
    except CycleError as error:
        raise TemplateError(
            "resources depend on each other in a cycle: " + " -> ".join(error.cycle), stack=name
        ) from None
    static = Resolver(
        stack_name=name,
        region=region,
        account_id=account_id,
        parameters=parameters,
        conditions=template.get("Conditions") or {},
        mappings=template.get("Mappings") or {},
        resources=_Unresolvable(),
        imports=_no_imports,
        resource_ids=set(resources),
    )
    for logical_id in order:
        declaration = resources[logical_id]
        if "Condition" in declaration and not static.condition(str(declaration["Condition"])):
            continue
        provider = PROVIDERS[str(declaration["Type"])]
        provider.validate(
            ValidationContext(
                stack_name=name,
                logical_id=logical_id,
                region=region,
                account_id=account_id,
                assembly=assembly,
                resolve=partial(static.resolve, logical_id=logical_id),
            ),
            declaration.get("Properties") or {},
        )
    for key, output in (template.get("Outputs") or {}).items():
        if not isinstance(output, dict) or "Value" not in output:
            raise TemplateError("output has no Value", stack=name, logical_id=f"Outputs.{key}")
        if "Condition" in output and output["Condition"] not in (template.get("Conditions") or {}):
            raise TemplateError(
                f"unknown condition {output['Condition']!r}",
                stack=name,
                logical_id=f"Outputs.{key}",
                path="Condition",
            )
        for reference in _scan(output, f"Outputs.{key}", name, f"Outputs.{key}"):
            _check_reference(
                reference,
                stack=stack,
                parameters=parameters,
                logical_id=f"Outputs.{key}",
                allow_resources=True,
                known_exports=known_exports,
            )
    exports = _static_exports(stack, static, known_exports)
    return (
        _StackPlan(artifact=stack, account_id=account_id, parameters=parameters, order=order),
        exports,
    )


def _static_exports(
    stack: StackArtifact, static: Resolver, known: set[str] | None
) -> set[str] | None:
    """Export names known after ``stack``; ``None`` once one cannot be known beforehand."""
    if known is None:
        return None
    names = set(known)
    for output in (stack.template.get("Outputs") or {}).values():
        export = output.get("Export")
        if not export:
            continue
        try:
            names.add(as_string(static.resolve(export.get("Name")), "export name"))
        except NeedsDeployment:
            return None
    return names


def _plan(
    assembly: CloudAssembly, *, region: str, account_id: str, clients: Clients
) -> list[_StackPlan]:
    unsupported = [
        f"{stack.stack_name}/{logical_id} ({declaration.get('Type')})"
        for stack in assembly.stacks
        for logical_id, declaration in (stack.template.get("Resources") or {}).items()
        if isinstance(declaration, dict) and declaration.get("Type") not in PROVIDERS
    ]
    if unsupported:
        raise UnsupportedResourceError(
            "resource types the local cloud does not support: " + ", ".join(unsupported)
        )
    plans = []
    known_exports: set[str] | None = set()
    for stack in assembly.stacks:
        plan, known_exports = _plan_stack(
            stack,
            region=region,
            account_id=account_id,
            clients=clients,
            assembly=assembly,
            known_exports=known_exports,
        )
        plans.append(plan)
    return plans


# -- deployment -----------------------------------------------------------------------


class _StackResources:
    """Resource lookups for the resolver of a stack being deployed."""

    def __init__(self, stack: DeployedStack, types: Mapping[str, str]) -> None:
        self._stack = stack
        self._types = types
        self.skipped: set[str] = set()

    def _get(self, logical_id: str) -> DeployedResource:
        if logical_id in self.skipped:
            raise TemplateError(f"resource {logical_id!r} is not created: its condition is false")
        if logical_id not in self._stack.resources:
            raise TemplateError(f"resource {logical_id!r} is not created yet")
        return self._stack.resources[logical_id]

    def ref(self, logical_id: str) -> Any:
        return self._get(logical_id).physical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self._get(logical_id)
        if attribute not in resource.attributes:
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute}: {self._types[logical_id]} "
                f"{logical_id} has no attribute {attribute!r}"
            )
        return resource.attributes[attribute]


def _label(declaration: Mapping[str, Any], stack_name: str, logical_id: str) -> str:
    """``TaskQueue (TaskQueueF51BE51C)`` from CDK's construct path, as ``cdk deploy`` shows."""
    path = str((declaration.get("Metadata") or {}).get("aws:cdk:path", ""))
    path = path.removeprefix(f"{stack_name}/").removesuffix("/Resource")
    return f"{path} ({logical_id})" if path and path != logical_id else logical_id


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', error)}"
    return f"{type(error).__name__}: {error}"


class _Deployment:
    def __init__(
        self,
        assembly: CloudAssembly,
        *,
        region: str,
        clients: Clients,
        on_progress: Progress | None,
    ) -> None:
        self.assembly = assembly
        self.region = region
        self.clients = clients
        self.on_progress = on_progress
        self.state = DeploymentState()
        self.stacks: list[DeployedStack] = []
        self.exports: dict[str, str] = {}

    def progress(self, line: str) -> None:
        if self.on_progress is not None:
            self.on_progress(line)

    def all_resources(self) -> list[DeployedResource]:
        return [res for stack in self.stacks for res in stack.resources.values()]

    def deploy_stack(self, plan: _StackPlan) -> None:
        started = time.perf_counter()
        stack = DeployedStack(name=plan.name, artifact_id=plan.artifact.artifact_id)
        self.stacks.append(stack)
        declarations = plan.resources
        lookup = _StackResources(stack, {lid: str(d["Type"]) for lid, d in declarations.items()})
        resolver = Resolver(
            stack_name=plan.name,
            region=self.region,
            account_id=plan.account_id,
            parameters=plan.parameters,
            conditions=plan.artifact.template.get("Conditions") or {},
            mappings=plan.artifact.template.get("Mappings") or {},
            resources=lookup,
            imports=self.exports.get,
            resource_ids=set(declarations),
        )
        total = len(plan.order)
        for index, logical_id in enumerate(plan.order, start=1):
            declaration = declarations[logical_id]
            resource_type = str(declaration["Type"])
            prefix = f"{plan.name} | {index}/{total}"
            suffix = f"{resource_type} | {_label(declaration, plan.name, logical_id)}"
            if "Condition" in declaration and not resolver.condition(str(declaration["Condition"])):
                lookup.skipped.add(logical_id)
                self.progress(f"{prefix} | SKIPPED (condition false) | {suffix}")
                continue
            properties = resolver.resolve(
                declaration.get("Properties") or {}, logical_id=logical_id, path="Properties"
            )
            ctx = ProviderContext(
                stack_name=plan.name,
                logical_id=logical_id,
                region=self.region,
                account_id=plan.account_id,
                clients=self.clients,
                assembly=self.assembly,
                state=self.state,
                stack_tags=plan.artifact.tags,
            )
            try:
                created = PROVIDERS[resource_type].create(ctx, properties)
            except TemplateError as error:
                self.progress(f"{prefix} | CREATE_FAILED | {suffix}")
                raise error.located(stack=plan.name, logical_id=logical_id) from None
            except CfnError:
                self.progress(f"{prefix} | CREATE_FAILED | {suffix}")
                raise
            except Exception as error:
                self.progress(f"{prefix} | CREATE_FAILED | {suffix}")
                raise DeployError(
                    _describe(error),
                    stack=plan.name,
                    logical_id=logical_id,
                    resource_type=resource_type,
                ) from error
            stack.resources[logical_id] = DeployedResource(
                stack_name=plan.name,
                logical_id=logical_id,
                resource_type=resource_type,
                physical_id=created.physical_id,
                attributes=created.attributes,
                cleanup=created.cleanup,
            )
            self.progress(f"{prefix} | CREATE_COMPLETE | {suffix}")
        self._outputs(plan, stack, resolver)
        elapsed = time.perf_counter() - started
        self.progress(f"{plan.name} | CREATE_COMPLETE | {total} resources in {elapsed:.2f}s")

    def _outputs(self, plan: _StackPlan, stack: DeployedStack, resolver: Resolver) -> None:
        for key, output in (plan.artifact.template.get("Outputs") or {}).items():
            if "Condition" in output and not resolver.condition(str(output["Condition"])):
                continue
            value = resolver.resolve(output.get("Value"), logical_id=f"Outputs.{key}", path="Value")
            text = ",".join(value) if isinstance(value, list) else as_string(value, f"output {key}")
            stack.outputs[key] = text
            export = output.get("Export")
            if export:
                name = as_string(
                    resolver.resolve(
                        export.get("Name"), logical_id=f"Outputs.{key}", path="Export.Name"
                    ),
                    "export name",
                )
                if name in self.exports:
                    raise TemplateError(
                        f"export {name!r} is already exported by another stack",
                        stack=plan.name,
                        logical_id=f"Outputs.{key}",
                    )
                self.exports[name] = text
                stack.exports[name] = text

    def start_services(
        self, services: LocalServices
    ) -> tuple[list[RestApiSpec], dict[tuple[str, str], str]]:
        functions = {spec.function_name: spec for spec in self.state.functions}
        built = build_rest_api_specs(self.state.apigateway, functions)
        for spec, stack_name, logical_id in self.state.pending:
            try:
                if isinstance(spec, FunctionSpec):
                    services.add_function(spec)
                elif isinstance(spec, EventSourceMappingSpec):
                    services.add_event_source_mapping(spec)
                else:
                    services.add_alarm(spec)
            except CfnError:
                raise
            except Exception as error:
                raise DeployError(
                    f"the local cloud refused it: {_describe(error)}",
                    stack=stack_name,
                    logical_id=logical_id,
                    resource_type=type(spec).__name__.removesuffix("Spec"),
                ) from error
        urls: dict[tuple[str, str], str] = {}
        for api in built:
            try:
                url = services.add_rest_api(api.spec)
            except Exception as error:
                raise DeployError(
                    f"the local API Gateway refused it: {_describe(error)}",
                    stack=api.stack_name,
                    logical_id=api.logical_id,
                    resource_type="AWS::ApiGateway::Stage",
                ) from error
            urls[(api.spec.api_id, api.spec.stage_name)] = url
            self.progress(
                f"{api.stack_name} | SERVING | AWS::ApiGateway::Stage | "
                f"{api.spec.name}/{api.spec.stage_name} at {url}"
            )
        return [api.spec for api in built], urls


def _delete_all(
    resources: list[DeployedResource],
    clients: Clients,
    state: DeploymentState,
    on_progress: Progress | None,
) -> list[str]:
    problems: list[str] = []
    endpoint_down = False
    for resource in reversed(resources):
        provider = PROVIDERS[resource.resource_type]
        where = (
            f"{resource.stack_name} | DELETE_{{}} | {resource.resource_type} | "
            f"{resource.logical_id}"
        )
        if endpoint_down:
            continue
        try:
            provider.delete(clients, resource)
        except _CONNECTION_ERRORS as error:
            endpoint_down = True
            problems.append(f"endpoint unreachable, nothing more deleted through it: {error}")
            if on_progress is not None:
                on_progress(where.format("SKIPPED") + " (endpoint unreachable)")
            continue
        except Exception as error:
            problems.append(f"{resource.stack_name}/{resource.logical_id}: {_describe(error)}")
            if on_progress is not None:
                on_progress(where.format("FAILED") + f" ({_describe(error)})")
            continue
        if on_progress is not None:
            on_progress(where.format("COMPLETE"))
    for directory in state.temp_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    return problems


def deploy_assembly(
    assembly_dir: Path,
    *,
    endpoint_url: str,
    region: str,
    services: LocalServices,
    on_progress: Progress | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> DeployedAssembly:
    """Deploy every stack of the cloud assembly in ``assembly_dir`` onto the local cloud.

    The whole assembly is validated first; then stacks and resources are created in
    dependency order; then functions, event source mappings, alarms and REST APIs are
    handed to ``services``. Raises ``CfnError`` (``TemplateError``, ``DeployError``, ...)
    naming the stack, the resource and the problem, after deleting whatever it had
    created. ``on_progress`` receives one line per resource, like ``cdk deploy`` prints.
    """
    started = time.perf_counter()
    assembly = CloudAssembly.load(Path(assembly_dir))
    clients = Clients(endpoint_url, region)
    plans = _plan(assembly, region=region, account_id=account_id, clients=clients)
    deployment = _Deployment(assembly, region=region, clients=clients, on_progress=on_progress)
    try:
        for plan in plans:
            deployment.deploy_stack(plan)
        rest_apis, api_urls = deployment.start_services(services)
    except BaseException as error:
        if on_progress is not None:
            on_progress(f"ROLLBACK_IN_PROGRESS | {error}")
        problems = _delete_all(deployment.all_resources(), clients, deployment.state, on_progress)
        if on_progress is not None:
            on_progress("ROLLBACK_COMPLETE" + (f" with problems: {problems}" if problems else ""))
        raise
    return DeployedAssembly(
        stacks=deployment.stacks,
        state=deployment.state,
        rest_apis=rest_apis,
        api_urls=api_urls,
        clients=clients,
        on_progress=on_progress,
        deploy_seconds=time.perf_counter() - started,
        assembly=assembly,
        region=region,
        account_id=account_id,
    )
