"""No slowdown as a queue grows: per-operation cost at a 40,000-message backlog stays within
a small factor of the cost at 400 (an O(n) receive, like plain moto's, would be ~100x)."""

from __future__ import annotations

import time
import uuid

from localcloud.sqs import SendEntry, SqsEngine


def backlog(engine: SqsEngine, size: int, groups: int) -> str:
    queue = engine.create_queue(
        f"scale-{size}.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    ).url
    for start in range(0, size, 10):
        entries = [
            SendEntry(id=str(i), body=f"m{start + i}", group_id=f"g{(start + i) % groups}")
            for i in range(10)
        ]
        engine.send_message_batch(queue, entries)
    return queue


def per_operation_seconds(engine: SqsEngine, queue: str, rounds: int) -> float:
    """Best of five timings of a consumer's cycle that keeps the backlog's size: send a
    batch of 10, receive 10, delete 10."""
    best = float("inf")
    counter = 0
    run = uuid.uuid4().hex  # distinct bodies: the queue deduplicates by content
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            counter += 1
            engine.send_message_batch(
                queue,
                [
                    SendEntry(id=str(i), body=f"{run}-{counter}-{i}", group_id=f"g{i}")
                    for i in range(10)
                ],
            )
            received = engine.receive_message(queue, max_messages=10)
            assert len(received) == 10
            engine.delete_message_batch(
                queue, [(str(i), m.receipt_handle) for i, m in enumerate(received)]
            )
        best = min(best, (time.perf_counter() - started) / rounds)
    return best


def test_operations_do_not_slow_down_as_the_queue_grows() -> None:
    engine = SqsEngine(throttling=False)
    small = backlog(engine, 400, groups=100)
    large = backlog(engine, 40_000, groups=100)

    small_cost = per_operation_seconds(engine, small, rounds=20)
    large_cost = per_operation_seconds(engine, large, rounds=20)

    assert large_cost < 4 * small_cost, (
        f"{large_cost * 1e6:.0f} µs per cycle at 40,000 messages versus "
        f"{small_cost * 1e6:.0f} µs at 400"
    )


def test_stale_heap_entries_are_compacted() -> None:
    engine = SqsEngine(throttling=False)
    queue = engine.create_queue("compact", {"VisibilityTimeout": "300"}).url
    for round_ in range(300):
        engine.send_message_batch(
            queue, [SendEntry(id=str(i), body=f"{round_}-{i}") for i in range(10)]
        )
        received = engine.receive_message(queue, max_messages=10)
        engine.delete_message_batch(
            queue, [(str(i), m.receipt_handle) for i, m in enumerate(received)]
        )

    state = engine.find_queue(queue)
    assert state is not None
    assert not state.messages
    # 3,000 deleted messages leave at most the compaction threshold behind.
    assert len(state.inflight_heap) <= 1024 + 10
    assert len(state.retention_heap) <= 1024 + 10
