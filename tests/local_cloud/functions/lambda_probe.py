"""A tiny Lambda handler the local Lambda tests steer through the event's ``action``."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

print(f"init pid={os.getpid()}")


def handler(event: dict[str, Any], context: Any) -> Any:
    """Do what ``event["action"]`` says; the tests assert on what comes back."""
    action = event.get("action", "echo")
    if action == "echo":
        return {
            "event": event,
            "request_id": context.aws_request_id,
            "function_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "client_context": getattr(context.client_context, "custom", None),
            "identity_pool": getattr(context.identity, "cognito_identity_pool_id", None),
            "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        }
    if action == "env":
        return {"env": dict(os.environ), "sys_path": sys.path}
    if action == "runtime":
        # How the runtime client polls /next, as it decides it for this environment.
        from awslambdaric.lambda_config import LambdaConfigProvider

        config = LambdaConfigProvider(["awslambdaric", os.environ["_HANDLER"]])
        return {
            "thread_polling": config.use_thread_polling,
            "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
            "main_thread": threading.current_thread() is threading.main_thread(),
            "threads": threading.active_count(),
        }
    if action == "print":
        print(event["text"])
        return {"printed": True}
    if action == "print_big":
        sys.stdout.write("x" * int(event["size"]) + "\n")
        print("after-big-line")
        return {"printed": int(event["size"])}
    if action == "big_response":
        return "y" * int(event["size"])
    if action == "raise":
        raise ValueError(event.get("message", "boom"))
    if action == "exit":
        sys.stdout.flush()
        os._exit(int(event.get("code", 3)))
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return {"slept": event["seconds"], "pid": os.getpid()}
    if action == "sqs_list_queues":
        import boto3  # boto3 inside a handler must reach the local cloud, not AWS

        return boto3.client("sqs").list_queues().get("QueueUrls", [])
    raise ValueError(f"unknown action {action!r}")
