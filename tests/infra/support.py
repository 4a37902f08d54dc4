"""Synthesis helpers for the infra tests: each profile synthesized in-process with cdk-nag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk.bundling import LambdaAsset

PROFILES = ("production", "ephemeral")

# Fixed inputs so the templates are deterministic (expires-at would otherwise follow the clock).
CONTEXTS: dict[str, dict[str, str]] = {
    "production": {"profile": "production"},
    "ephemeral": {
        "profile": "ephemeral",
        "stack_prefix": "pr-123",
        "expires_at": "2030-01-31T18:00:00Z",
        "owner": "ci-bot",
    },
}
PREFIXES = {"production": "TaskApi", "ephemeral": "pr-123"}
ACK_METADATA = "aws:cdk:acknowledged-rules"


@dataclass
class Synthesized:
    """One profile's synthesized app: templates by stack suffix, and what cdk-nag said."""

    profile: str
    outdir: Path
    templates: dict[str, dict[str, Any]]  # "Queue" | "Api" | "Monitoring" -> template
    stack_names: dict[str, str]
    manifest: dict[str, Any]
    nag_error: str | None
    violations: list[dict[str, Any]]
    acknowledgments: list[tuple[str, str, str]] = field(default_factory=list)  # path, id, reason

    def template(self, suffix: str) -> dict[str, Any]:
        return self.templates[suffix]

    def resources(self, suffix: str, type_: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[suffix]["Resources"].items()
            if resource["Type"] == type_
        }

    def only(self, suffix: str, type_: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(suffix, type_)
        assert len(found) == 1, f"expected one {type_} in {suffix}, found {sorted(found)}"
        return next(iter(found.items()))

    def all_templates(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self.templates.items()

    def export_value(self, import_value: Any) -> Any:
        """The value behind ``{"Fn::ImportValue": name}``, looked up in the exporting stack."""
        assert isinstance(import_value, dict), import_value
        assert "Fn::ImportValue" in import_value, import_value
        name = import_value["Fn::ImportValue"]
        for template in self.templates.values():
            for output in template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == name:
                    return output["Value"]
        raise AssertionError(f"no stack exports {name!r}")


def _violations(outdir: Path) -> list[dict[str, Any]]:
    report_file = outdir / "validation-report.json"
    if not report_file.is_file():
        return []
    report = json.loads(report_file.read_text())
    return [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]


def synthesize_in_process(
    profile: str, outdir: Path, asset: LambdaAsset, *, context: dict[str, str] | None = None
) -> Synthesized:
    """Build and synthesize the app with cdk-nag; a nag failure is recorded, not raised."""
    from cdk.build import build_app

    built = build_app(context or CONTEXTS[profile], outdir=outdir, asset=asset, nag=True)
    nag_error = None
    try:
        built.app.synth()
    except RuntimeError as error:  # cdk-nag findings interrupt synthesis ("ValidationFailed")
        nag_error = str(error)
    acknowledgments = [
        (node.node.path, rule, reason)
        for node in built.app.node.find_all()
        for entry in node.node.metadata
        if entry.type == ACK_METADATA
        for rule, reason in dict(entry.data).items()
    ]
    names = {
        suffix: stack.stack_name
        for suffix, stack in zip(("Queue", "Api", "Monitoring"), built.stacks, strict=True)
    }
    templates = {
        suffix: json.loads((outdir / f"{name}.template.json").read_text())
        for suffix, name in names.items()
        if (outdir / f"{name}.template.json").is_file()
    }
    manifest = json.loads((outdir / "manifest.json").read_text()) if nag_error is None else {}
    return Synthesized(
        profile=profile,
        outdir=outdir,
        templates=templates,
        stack_names=names,
        manifest=manifest,
        nag_error=nag_error,
        violations=_violations(outdir),
        acknowledgments=acknowledgments,
    )
