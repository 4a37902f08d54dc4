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
