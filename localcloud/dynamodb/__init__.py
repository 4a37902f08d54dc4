"""DynamoDB item operations served fast on moto's tables: see :mod:`.fastpath`."""

from localcloud.dynamodb.fastpath import TARGET_PREFIX, DynamoFastPath

__all__ = ["TARGET_PREFIX", "DynamoFastPath"]
