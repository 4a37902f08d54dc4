"""Imported by every local Lambda worker at start-up (its folder is on ``PYTHONPATH``).

The worker runs ``python -P -m awslambdaric``: ``-P`` keeps the working directory (the
function's asset directory) from being put FIRST on ``sys.path``. Here the asset directory
is appended AFTER site-packages instead, so:

- the function's own packages (``handlers``: not installed in the venv) load from the asset;
- third-party packages the asset also bundles load from this machine's virtualenv. The asset
  was built for Lambda (Python 3.12, Linux), and its binary wheels (``pydantic_core`` for
  cp312, ...) may not load on the local Python.

This folder removes itself from ``sys.path`` so nothing else is ever imported from it.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
_TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT")
if _TASK_ROOT and _TASK_ROOT not in sys.path:
    sys.path.append(_TASK_ROOT)

# The runtime polls /next in its main thread, as awslambdaric does for Python <= 3.11. For
# 3.12+ (AWS_EXECUTION_ENV) it starts a new thread per /next so that the main thread can
# run Python signal handlers while idle; locally no signal but SIGKILL reaches an idle
# runtime, and that thread (created and joined per invoke) doubled the runtime's CPU per
# warm invoke (~400 -> ~185 us measured, docs/benchmarks.md). The function sees the same
# environment and runs in the main thread either way.
try:
    from awslambdaric.lambda_config import LambdaConfigProvider
except ImportError:  # an interpreter without awslambdaric (a handler's child process, ...)
    pass
else:
    if hasattr(LambdaConfigProvider, "SUPPORTED_THREADPOLLING_ENVS"):
        LambdaConfigProvider.SUPPORTED_THREADPOLLING_ENVS = frozenset()
