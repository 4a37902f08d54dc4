"""``AWS::IAM::Role``, ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` in the endpoint's IAM.

The roles' policies are what the local cloud enforces on the functions' calls
(:mod:`localcloud.iam_policy` reads them back from moto's IAM); they also let boto3 see
what the template declares and give a Lambda a real role ARN.
"""

from __future__ import annotations

import json
from typing import Any, Final

from botocore.exceptions import ClientError

from localcloud.cfn.providers.base import (
    Clients,
    Created,
    DeployedResource,
    Provider,
    ProviderContext,
    require,
    tag_list,
    undo_on_error,
)
from localcloud.cfn.providers.errors import ignore_missing, is_missing

_MAX_ROLE_NAME: Final = 64
_MAX_POLICY_NAME: Final = 128
_AWS_MANAGED_PREFIX: Final = ":iam::aws:policy/"


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _attach(clients: Clients, kind: str, name: str, policy_arn: str) -> bool:
    """Attach a managed policy; ``False`` if it is an AWS managed policy moto does not know.

    moto loads AWS managed policies only with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``,
    which costs seconds at startup for ~1,300 policies. Such attachments are recorded on
    the resource instead of failing, and grant nothing locally (docs/local-cloud/iam.md).
    """
    try:
        if kind == "Roles":
            clients.iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        elif kind == "Users":
            clients.iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
        else:
            clients.iam.attach_group_policy(GroupName=name, PolicyArn=policy_arn)
    except ClientError as error:
        if is_missing(error) and _AWS_MANAGED_PREFIX in policy_arn:
            return False
        raise
    return True


def _detach(clients: Clients, kind: str, name: str, policy_arn: str) -> None:
    with ignore_missing():
        if kind == "Roles":
            clients.iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
        elif kind == "Users":
            clients.iam.detach_user_policy(UserName=name, PolicyArn=policy_arn)
        else:
            clients.iam.detach_group_policy(GroupName=name, PolicyArn=policy_arn)


class RoleProvider(Provider):
    """A role with its inline policies and attached managed policies; ``Ref`` is its name."""

    resource_type = "AWS::IAM::Role"
    attributes = frozenset({"Arn", "RoleId"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = properties.get("RoleName") or ctx.generate_name(_MAX_ROLE_NAME)
        request: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": _document(
                require(ctx, properties, "AssumeRolePolicyDocument")
            ),
            "Path": properties.get("Path", "/"),
        }
        for key in ("Description", "MaxSessionDuration", "PermissionsBoundary"):
            if key in properties:
                request[key] = properties[key]
        tags = ctx.tags(properties.get("Tags"))
        if tags:
            request["Tags"] = tag_list(tags)
        role = ctx.clients.iam.create_role(**request)["Role"]
        cleanup: dict[str, Any] = {
            "RoleName": name,
            "Attached": [],
            "Inline": [],
            "NotAttached": [],
        }
        created = Created(
            physical_id=name,
            attributes={"Arn": role["Arn"], "RoleId": role["RoleId"]},
            cleanup=cleanup,
        )
        with undo_on_error(self, ctx, created):
            for policy in properties.get("Policies") or ():
                ctx.clients.iam.put_role_policy(
                    RoleName=name,
                    PolicyName=str(policy["PolicyName"]),
                    PolicyDocument=_document(policy["PolicyDocument"]),
                )
                cleanup["Inline"].append(str(policy["PolicyName"]))
            for arn in properties.get("ManagedPolicyArns") or ():
                attached = _attach(ctx.clients, "Roles", name, str(arn))
                cleanup["Attached" if attached else "NotAttached"].append(str(arn))
        return created

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        name = resource.cleanup["RoleName"]
        for arn in resource.cleanup["Attached"]:
            _detach(clients, "Roles", name, arn)
        for policy_name in resource.cleanup["Inline"]:
            with ignore_missing():
                clients.iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        with ignore_missing():
            clients.iam.delete_role(RoleName=name)


class PolicyProvider(Provider):
    """An inline policy put on each role, user and group it names."""

    resource_type = "AWS::IAM::Policy"
    attributes = frozenset({"Id"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        policy_name = str(require(ctx, properties, "PolicyName"))
        document = _document(require(ctx, properties, "PolicyDocument"))
        iam = ctx.clients.iam
        physical_id = ctx.generate_name(_MAX_POLICY_NAME)
        created = Created(
            physical_id=physical_id,
            attributes={"Id": physical_id},
            cleanup={"PolicyName": policy_name, "Roles": [], "Users": [], "Groups": []},
        )
        targets: dict[str, list[str]] = created.cleanup
        with undo_on_error(self, ctx, created):
            for role in properties.get("Roles") or ():
                iam.put_role_policy(
                    RoleName=str(role), PolicyName=policy_name, PolicyDocument=document
                )
                targets["Roles"].append(str(role))
            for user in properties.get("Users") or ():
                iam.put_user_policy(
                    UserName=str(user), PolicyName=policy_name, PolicyDocument=document
                )
                targets["Users"].append(str(user))
            for group in properties.get("Groups") or ():
                iam.put_group_policy(
                    GroupName=str(group), PolicyName=policy_name, PolicyDocument=document
                )
                targets["Groups"].append(str(group))
        return created

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        policy_name = resource.cleanup["PolicyName"]
        for role in resource.cleanup["Roles"]:
            with ignore_missing():
                clients.iam.delete_role_policy(RoleName=role, PolicyName=policy_name)
        for user in resource.cleanup["Users"]:
            with ignore_missing():
                clients.iam.delete_user_policy(UserName=user, PolicyName=policy_name)
        for group in resource.cleanup["Groups"]:
            with ignore_missing():
                clients.iam.delete_group_policy(GroupName=group, PolicyName=policy_name)


class ManagedPolicyProvider(Provider):
    """A customer managed policy, attached to the roles, users and groups it names."""

    resource_type = "AWS::IAM::ManagedPolicy"
    attributes = frozenset({"PolicyArn", "PolicyId", "AttachmentCount", "DefaultVersionId"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = properties.get("ManagedPolicyName") or ctx.generate_name(_MAX_POLICY_NAME)
        request: dict[str, Any] = {
            "PolicyName": name,
            "PolicyDocument": _document(require(ctx, properties, "PolicyDocument")),
            "Path": properties.get("Path", "/"),
        }
        if "Description" in properties:
            request["Description"] = properties["Description"]
        policy = ctx.clients.iam.create_policy(**request)["Policy"]
        arn = policy["Arn"]
        cleanup: dict[str, Any] = {"PolicyArn": arn, "Roles": [], "Users": [], "Groups": []}
        created = Created(
            physical_id=arn,
            attributes={
                "PolicyArn": arn,
                "PolicyId": policy.get("PolicyId", ""),
                "AttachmentCount": 0,
                "DefaultVersionId": policy.get("DefaultVersionId", "v1"),
            },
            cleanup=cleanup,
        )
        with undo_on_error(self, ctx, created):
            for kind in ("Roles", "Users", "Groups"):
                for target in properties.get(kind) or ():
                    _attach(ctx.clients, kind, str(target), arn)
                    cleanup[kind].append(str(target))
        created.attributes["AttachmentCount"] = sum(
            len(cleanup[k]) for k in ("Roles", "Users", "Groups")
        )
        return created

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        arn = resource.cleanup["PolicyArn"]
        for kind in ("Roles", "Users", "Groups"):
            for target in resource.cleanup[kind]:
                _detach(clients, kind, target, arn)
        with ignore_missing():
            clients.iam.delete_policy(PolicyArn=arn)
