@fault_injection
Feature: A crash or timeout of the processor loses nothing and applies nothing twice
  When the processor crashes or runs out of time in the middle of a batch, the whole
  batch goes back to the queue. The tasks it had already finished are delivered again
  and left as they were; every task still completes once, in order.

  Background:
    Given the Task API is available

  Scenario Outline: The processor <fault> in the middle of a batch
    When a client submits 3 valid tasks, one that makes the processor <fault>, and 2 more
    Then all submitted tasks are eventually COMPLETED
    And each task was completed exactly once
    And they were processed in the order they were submitted

    Examples:
      | fault    |
      | crash    |
      | time out |
