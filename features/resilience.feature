@fault_injection @resilience
Feature: A crash or timeout of the processor loses nothing and applies nothing twice
  When the processor crashes or runs out of time in the middle of a batch, the whole
  batch goes back to the queue. The tasks it had already finished are delivered again
  and left as they were (counted as duplicates); every task still completes once, in
  order. The six tasks reach the processor in one batch: the scenario pauses the
  processor's event source while it submits them.

  Background:
    Given the Task API is available

  Scenario Outline: The processor <fault> in the middle of a batch
    Given the task queue is empty
    And the processor's Lambda error count is noted
    And the processor's event source is paused
    When a client submits 3 valid tasks, one that makes the processor <fault>, and 2 more
    And the processor's event source is resumed
    Then all submitted tasks are eventually COMPLETED
    And the task that made the processor <fault> started its first attempt in the first batch and never finished it there
    And the processor's Lambda errors went up by at least 1
    And the 3 tasks before it completed in the first batch, were delivered again and counted as duplicates
    And each task was applied exactly once
    And they were processed in the order they were submitted

    Examples:
      | fault    |
      | crash    |
      | time out |
