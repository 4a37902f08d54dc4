"""CloudFormation intrinsic functions: static scanning and resolution.

``scan`` walks a template value without resolving anything: it finds the references
(resources, parameters, conditions, exports, mappings) for validation and dependency
ordering, and rejects an intrinsic function the engine does not know. ``Resolver``
turns a template value into plain JSON data once the resources it refers to exist.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from localcloud.cfn.errors import TemplateError


class _NoValue:
    """``Ref: AWS::NoValue``: the property (or list element) it stands for is removed."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

PSEUDO_PARAMETERS: Final = frozenset(
    {
        "AWS::AccountId",
        "AWS::Region",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::NoValue",
        "AWS::NotificationARNs",
    }
)

SUPPORTED_INTRINSICS: Final = frozenset(
    {
        "Ref",
        "Fn::GetAtt",
        "Fn::Join",
        "Fn::Sub",
        "Fn::Select",
        "Fn::Split",
        "Fn::If",
        "Fn::Equals",
        "Fn::Not",
        "Fn::And",
        "Fn::Or",
        "Fn::ImportValue",
        "Fn::GetAZs",
        "Fn::Base64",
        "Fn::FindInMap",
    }
)
_CONDITION_FUNCTIONS: Final = frozenset({"Fn::Not", "Fn::And", "Fn::Or"})
# "${Name}", "${Resource.Attribute}", "${!Literal}" (the "!" escapes a literal "${").
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
# Availability zones the local cloud reports for Fn::GetAZs (moto knows these in every region).
_AZ_SUFFIXES: Final = ("a", "b", "c")


def intrinsic_name(value: object) -> str | None:
    """The function name if ``value`` is an intrinsic call (``{"Ref": ..}``, ``{"Fn::X": ..}``)."""
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            return str(key)
    return None


@dataclass(frozen=True)
class Reference:
    """Something a template value refers to, found by ``scan``."""

    kind: Literal["Ref", "GetAtt", "Condition", "ImportValue", "FindInMap"]
    target: str
    attribute: str | None = None  # GetAtt attribute (None when computed by an intrinsic)
    path: str = ""


def _join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _sub_parts(args: object, path: str) -> tuple[str, Mapping[str, Any]]:
    """The template string and variable map of an ``Fn::Sub`` (both forms)."""
    if isinstance(args, str):
        return args, {}
    if (
        isinstance(args, list)
        and len(args) == 2
        and isinstance(args[0], str)
        and isinstance(args[1], dict)
    ):
        return args[0], args[1]
    raise TemplateError(
        "Fn::Sub takes a string or [string, {variables}], got " + _short(args), path=path
    )


def _get_att_parts(args: object, path: str) -> tuple[str, object]:
    """The logical id and attribute (maybe an intrinsic) of an ``Fn::GetAtt`` (both forms)."""
    if isinstance(args, str) and "." in args:
        logical_id, attribute = args.split(".", 1)
        return logical_id, attribute
    if isinstance(args, list) and len(args) == 2 and isinstance(args[0], str):
        return args[0], args[1]
    raise TemplateError(
        'Fn::GetAtt takes ["LogicalId", "Attribute"] or "LogicalId.Attribute", got ' + _short(args),
        path=path,
    )


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def scan(value: object, path: str = "") -> Iterator[Reference]:
    """Every reference in ``value``; raises ``TemplateError`` for an unknown intrinsic.

    Both branches of ``Fn::If`` count, as they do for CloudFormation's ordering.
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from scan(item, _join_path(path, index))
        return
    if not isinstance(value, dict):
        return
    name = intrinsic_name(value)
    if name is None:
        for key, item in value.items():
            yield from scan(item, _join_path(path, key))
        return
    args = value[name]
    here = _join_path(path, name)
    if name not in SUPPORTED_INTRINSICS:
        raise TemplateError(
            f"unknown or unsupported intrinsic function {name!r} "
            f"(supported: {', '.join(sorted(SUPPORTED_INTRINSICS))})",
            path=path or None,
        )
    if name == "Ref":
        if not isinstance(args, str):
            raise TemplateError(f"Ref takes a name, got {_short(args)}", path=here)
        yield Reference("Ref", args, path=path)
    elif name == "Fn::GetAtt":
        logical_id, attribute = _get_att_parts(args, here)
        if isinstance(attribute, str):
            yield Reference("GetAtt", logical_id, attribute, path=path)
        else:
            yield Reference("GetAtt", logical_id, None, path=path)
            yield from scan(attribute, here)
    elif name == "Fn::Sub":
        template, variables = _sub_parts(args, here)
        for variable in _SUB_VARIABLE.findall(template):
            if variable.startswith("!") or variable in variables:
                continue
            if variable in PSEUDO_PARAMETERS:
                yield Reference("Ref", variable, path=path)
            elif "." in variable:
                logical_id, attribute = variable.split(".", 1)
                yield Reference("GetAtt", logical_id, attribute, path=path)
            else:
                yield Reference("Ref", variable, path=path)
        for key, item in variables.items():
            yield from scan(item, _join_path(here, key))
    elif name == "Fn::If":
        if not (isinstance(args, list) and len(args) == 3 and isinstance(args[0], str)):
            raise TemplateError(
                f'Fn::If takes ["Condition", valueIfTrue, valueIfFalse], got {_short(args)}',
                path=here,
            )
        yield Reference("Condition", args[0], path=path)
        yield from scan(args[1], _join_path(here, 1))
        yield from scan(args[2], _join_path(here, 2))
    elif name in _CONDITION_FUNCTIONS:
        if not isinstance(args, list):
            raise TemplateError(f"{name} takes a list of conditions, got {_short(args)}", path=here)
        for index, item in enumerate(args):
            if isinstance(item, dict) and len(item) == 1 and "Condition" in item:
                yield Reference("Condition", str(item["Condition"]), path=path)
            else:
                yield from scan(item, _join_path(here, index))
    elif name == "Fn::ImportValue":
        if isinstance(args, str):
            yield Reference("ImportValue", args, path=path)
        else:
            yield from scan(args, here)
    elif name == "Fn::FindInMap":
        if not (isinstance(args, list) and len(args) in (3, 4)):
            raise TemplateError(
                f"Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey], got {_short(args)}",
                path=here,
            )
        if isinstance(args[0], str):
            yield Reference("FindInMap", args[0], path=path)
        yield from scan(args, here)
    else:
        yield from scan(args, here)


class ResourceLookup(Protocol):
    """How the resolver reads resources that already exist (the engine's deployed state)."""

    def ref(self, logical_id: str) -> Any:
        """The ``Ref`` value of a resource (raise ``TemplateError`` if it has none)."""
        ...

    def get_att(self, logical_id: str, attribute: str) -> Any:
        """An ``Fn::GetAtt`` value (raise ``TemplateError`` if unknown)."""
        ...


def as_string(value: object, what: str, path: str = "") -> str:
    """A scalar as CloudFormation renders it in a string (``Fn::Join``, ``Fn::Sub``, outputs)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TemplateError(f"{what} needs a string, got {_short(value)}", path=path or None)


class Resolver:
    """Resolves template values of one stack into plain data.

    ``parameters`` are the resolved parameter values; ``conditions`` and ``mappings`` are
    the template sections; ``resources`` reads created resources; ``imports`` returns the
    value of an export (``None`` if no stack exports that name); ``resource_ids`` are the
    logical ids declared in the template (so a Ref can tell "unknown" from "not yet").
    """

    def __init__(
        self,
        *,
        stack_name: str,
        region: str,
        account_id: str,
        parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        resources: ResourceLookup,
        imports: Callable[[str], str | None],
        resource_ids: Collection[str],
        stack_id: str | None = None,
        partition: str = "aws",
        url_suffix: str = "amazonaws.com",
    ) -> None:
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.parameters = parameters
        self.conditions = conditions
        self.mappings = mappings
        self.resources = resources
        self.imports = imports
        self.resource_ids = resource_ids
        self.partition = partition
        self.url_suffix = url_suffix
        self.stack_id = stack_id or (
            f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/"
            "00000000-0000-0000-0000-000000000000"
        )
        self._condition_values: dict[str, bool] = {}
        self._conditions_in_progress: list[str] = []

    # -- public API --------------------------------------------------------------

    def resolve(self, value: object, *, logical_id: str | None = None, path: str = "") -> Any:
        """``value`` with every intrinsic resolved; ``AWS::NoValue`` entries are dropped."""
        try:
            return self._resolve(value, path)
        except TemplateError as error:
            raise error.located(stack=self.stack_name, logical_id=logical_id) from None

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template (evaluated once)."""
        try:
            return self._condition(name, "Conditions." + name)
        except TemplateError as error:
            raise error.located(stack=self.stack_name) from None

    def pseudo(self, name: str) -> Any:
        """The value of a pseudo parameter (``AWS::Region`` ...)."""
        values: dict[str, Any] = {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        return values[name]

    # -- internals ---------------------------------------------------------------

    def _resolve(self, value: object, path: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item, _join_path(path, i)) for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        name = intrinsic_name(value)
        if name is None:
            resolved = {
                key: self._resolve(item, _join_path(path, key)) for key, item in value.items()
            }
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        handler = self._HANDLERS.get(name)
        if handler is None:
            raise TemplateError(
                f"unknown or unsupported intrinsic function {name!r} "
                f"(supported: {', '.join(sorted(SUPPORTED_INTRINSICS))})",
                path=path or None,
            )
        return handler(self, value[name], _join_path(path, name))

    def _ref(self, args: object, path: str) -> Any:
        if not isinstance(args, str):
            raise TemplateError(f"Ref takes a name, got {_short(args)}", path=path)
        if args in PSEUDO_PARAMETERS:
            return self.pseudo(args)
        if args in self.parameters:
            return self.parameters[args]
        if args in self.resource_ids:
            return self.resources.ref(args)
        raise TemplateError(f"Ref to unknown resource or parameter {args!r}", path=path)

    def _get_att(self, args: object, path: str) -> Any:
        logical_id, attribute = _get_att_parts(args, path)
        if not isinstance(attribute, str):
            attribute = as_string(self._resolve(attribute, path), "Fn::GetAtt attribute", path)
        if logical_id not in self.resource_ids:
            raise TemplateError(f"Fn::GetAtt of unknown resource {logical_id!r}", path=path)
        return self.resources.get_att(logical_id, attribute)

    def _join(self, args: object, path: str) -> str:
        if not (isinstance(args, list) and len(args) == 2 and isinstance(args[0], str)):
            raise TemplateError(
                f'Fn::Join takes ["delimiter", [values]], got {_short(args)}', path=path
            )
        items = self._resolve(args[1], _join_path(path, 1))
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Join needs a list of values, got {_short(items)}", path=path)
        return args[0].join(as_string(item, "Fn::Join", path) for item in items)

    def _sub(self, args: object, path: str) -> str:
        template, variables = _sub_parts(args, path)
        values = {
            key: self._resolve(item, _join_path(path, key)) for key, item in variables.items()
        }

        def replace(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable.startswith("!"):
                return "${" + variable[1:] + "}"
            if variable in values:
                return as_string(values[variable], f"Fn::Sub variable {variable!r}", path)
            if variable in PSEUDO_PARAMETERS or "." not in variable:
                return as_string(self._ref(variable, path), f"Fn::Sub ${{{variable}}}", path)
            logical_id, attribute = variable.split(".", 1)
            return as_string(
                self._get_att([logical_id, attribute], path), f"Fn::Sub ${{{variable}}}", path
            )

        return _SUB_VARIABLE.sub(replace, template)

    def _select(self, args: object, path: str) -> Any:
        if not (isinstance(args, list) and len(args) == 2):
            raise TemplateError(
                f"Fn::Select takes [index, [values]], got {_short(args)}", path=path
            )
        index = self._resolve(args[0], _join_path(path, 0))
        items = self._resolve(args[1], _join_path(path, 1))
        try:
            position = int(index)
        except (TypeError, ValueError):
            raise TemplateError(f"Fn::Select index {index!r} is not a number", path=path) from None
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Select needs a list, got {_short(items)}", path=path)
        if not 0 <= position < len(items):
            raise TemplateError(
                f"Fn::Select index {position} is out of range for {len(items)} values", path=path
            )
        return items[position]

    def _split(self, args: object, path: str) -> list[str]:
        if not (isinstance(args, list) and len(args) == 2 and isinstance(args[0], str)):
            raise TemplateError(
                f'Fn::Split takes ["delimiter", string], got {_short(args)}', path=path
            )
        source = as_string(self._resolve(args[1], _join_path(path, 1)), "Fn::Split", path)
        return source.split(args[0])

    def _if(self, args: object, path: str) -> Any:
        if not (isinstance(args, list) and len(args) == 3 and isinstance(args[0], str)):
            raise TemplateError(
                f'Fn::If takes ["Condition", valueIfTrue, valueIfFalse], got {_short(args)}',
                path=path,
            )
        chosen = 1 if self._condition(args[0], path) else 2
        return self._resolve(args[chosen], _join_path(path, chosen))

    def _equals(self, args: object, path: str) -> bool:
        if not (isinstance(args, list) and len(args) == 2):
            raise TemplateError(f"Fn::Equals takes [value1, value2], got {_short(args)}", path=path)
        left, right = (self._resolve(item, _join_path(path, i)) for i, item in enumerate(args))
        # CloudFormation compares the string forms ("1" equals 1, "true" equals true).
        if isinstance(left, (list, dict)) or isinstance(right, (list, dict)):
            return bool(left == right)
        return as_string(left, "Fn::Equals", path) == as_string(right, "Fn::Equals", path)

    def _condition_list(self, name: str, args: object, path: str) -> list[bool]:
        if not isinstance(args, list) or not args:
            raise TemplateError(f"{name} takes a list of conditions, got {_short(args)}", path=path)
        values = []
        for index, item in enumerate(args):
            here = _join_path(path, index)
            if isinstance(item, dict) and len(item) == 1 and "Condition" in item:
                values.append(self._condition(str(item["Condition"]), here))
            else:
                result = self._resolve(item, here)
                if not isinstance(result, bool):
                    raise TemplateError(f"{name} needs conditions, got {_short(result)}", path=here)
                values.append(result)
        return values

    def _not(self, args: object, path: str) -> bool:
        values = self._condition_list("Fn::Not", args, path)
        if len(values) != 1:
            raise TemplateError("Fn::Not takes exactly one condition", path=path)
        return not values[0]

    def _and(self, args: object, path: str) -> bool:
        return all(self._condition_list("Fn::And", args, path))

    def _or(self, args: object, path: str) -> bool:
        return any(self._condition_list("Fn::Or", args, path))

    def _import_value(self, args: object, path: str) -> str:
        name = as_string(self._resolve(args, path), "Fn::ImportValue", path)
        value = self.imports(name)
        if value is None:
            raise TemplateError(
                f"Fn::ImportValue {name!r}: no stack deployed before this one exports that name",
                path=path,
            )
        return value

    def _get_azs(self, args: object, path: str) -> list[str]:
        region = self._resolve(args, path) or self.region
        return [f"{region}{suffix}" for suffix in _AZ_SUFFIXES]

    def _base64(self, args: object, path: str) -> str:
        text = as_string(self._resolve(args, path), "Fn::Base64", path)
        return base64.b64encode(text.encode()).decode()

    def _find_in_map(self, args: object, path: str) -> Any:
        if not (isinstance(args, list) and len(args) in (3, 4)):
            raise TemplateError(
                f"Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey], got {_short(args)}",
                path=path,
            )
        keys = [
            as_string(self._resolve(item, _join_path(path, i)), "Fn::FindInMap key", path)
            for i, item in enumerate(args[:3])
        ]
        node: Any = self.mappings
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                if len(args) == 4 and isinstance(args[3], dict) and "DefaultValue" in args[3]:
                    return self._resolve(args[3]["DefaultValue"], path)
                raise TemplateError(f"Fn::FindInMap: no {key!r} in {'/'.join(keys)}", path=path)
            node = node[key]
        return node

    def _condition(self, name: str, path: str) -> bool:
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name!r}", path=path)
        if name in self._conditions_in_progress:
            cycle = [
                *self._conditions_in_progress[self._conditions_in_progress.index(name) :],
                name,
            ]
            raise TemplateError("conditions refer to each other: " + " -> ".join(cycle), path=path)
        self._conditions_in_progress.append(name)
        try:
            definition = self.conditions[name]
            if isinstance(definition, dict) and len(definition) == 1 and "Condition" in definition:
                value: object = self._condition(str(definition["Condition"]), path)
            else:
                value = self._resolve(definition, "Conditions." + name)
        finally:
            self._conditions_in_progress.pop()
        if not isinstance(value, bool):
            raise TemplateError(
                f"condition {name!r} does not evaluate to true or false: {_short(value)}",
                path="Conditions." + name,
            )
        self._condition_values[name] = value
        return value

    _HANDLERS: Final[dict[str, Callable[[Resolver, object, str], Any]]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Join": _join,
        "Fn::Sub": _sub,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Fn::ImportValue": _import_value,
        "Fn::GetAZs": _get_azs,
        "Fn::Base64": _base64,
        "Fn::FindInMap": _find_in_map,
    }
