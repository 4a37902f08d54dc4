"""AWS adapters (boto3): the tasks table, the task queue and the dead-letter queue."""
