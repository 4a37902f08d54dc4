"""DynamoDB item operations served fast on moto's tables: see :mod:`.fastpath`."""

from harness.local.dynamodb.fastpath import TARGET_PREFIX, DynamoFastPath

__all__ = ["TARGET_PREFIX", "DynamoFastPath"]
