"""The published OpenAPI document of the Task API, generated from the resolver.

``python -m handlers.openapi`` rewrites ``docs/openapi.json``; ``--check`` only reports
whether it is up to date (exit 1 if not). A unit test runs the check, so the document in
the repository always matches the code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from handlers.domain.constants import MAX_BODY_BYTES

DOCUMENT_PATH: Final = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
API_TITLE: Final = "Task API"
API_VERSION: Final = "1.0.0"
API_DESCRIPTION: Final = (
    "Accepts tasks, validates and sanitizes them, and queues them on an SQS FIFO queue "
    "(one message group, so they are processed in submission order); a processor "
    "completes each task exactly once. Request bodies are JSON (`application/json`), at "
    f"most {MAX_BODY_BYTES} bytes (16 KiB). Every error is a JSON object "
    "`{error, message, details?}`; `details` lists one `{field, message}` per invalid "
    "field. A path or method this document does not declare is answered by API Gateway, "
    'as REST APIs on AWS do: 403 `{"message": "Missing Authentication Token"}`. '
    "Every operation requires IAM authorization: the request is signed with AWS Signature "
    "Version 4 for the `execute-api` service by a principal allowed `execute-api:Invoke` "
    "on the method; an unsigned request gets 403 `Missing Authentication Token`, a "
    "principal without that right 403 `User: ... is not authorized to perform: "
    "execute-api:Invoke ...`. CORS preflight (OPTIONS) needs no credentials."
)
SECURITY_SCHEME: Final = "sigv4"


def openapi_document() -> str:
    """The OpenAPI 3.1 document as the resolver generates it, with a final new line."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    from handlers.api import app

    # API Gateway's own declaration of IAM authorization (its OpenAPI extensions).
    sigv4 = APIKey(  # type: ignore[call-arg]  # "in" is a keyword: pydantic takes in_ by name
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (service `execute-api`); the caller needs "
        "`execute-api:Invoke` on the method's ARN.",
        openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
    )
    return (
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description=API_DESCRIPTION,
            security_schemes={SECURITY_SCHEME: sigv4},
            security=[{SECURITY_SCHEME: []}],
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the document, or with ``--check`` compare it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m handlers.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="where to write")
    args = parser.parse_args(argv)
    document = openapi_document()
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != document:
            print(f"{path} is out of date: run `python -m handlers.openapi`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
