"""Pure domain code of the Task API: models, rules and use cases. No boto3, no Lambda events."""
