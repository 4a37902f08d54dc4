@ordering
Feature: Tasks are processed in the order they were submitted
  All tasks share one message group, so the processor handles them strictly one after
  another, in submission order, even across batches and retries. A task that fails holds
  back the tasks behind it until it succeeds or is dead-lettered.

  To make tasks reach the processor together, in one batch, a scenario pauses the
  processor's event source (UpdateEventSourceMapping Enabled=false, as on AWS, waiting
  until it reports Disabled), submits them, and resumes it (waiting until Enabled). What
  happened is read from the history the processor records on every task: each attempt's
  start and end, with the Lambda invocation it ran in.

  Background:
    Given the Task API is available

  Scenario: Tasks submitted one after another are processed in that order
    When a client submits 5 valid tasks one after another
    Then all submitted tasks are eventually COMPLETED
    And they were processed in the order they were submitted

  Scenario: Order holds within each batch and across batches
    Given the task queue is empty
    And the processor's event source is paused
    When a client submits 25 valid tasks one after another
    And the processor's event source is resumed
    Then all submitted tasks are eventually COMPLETED
    And they reached the processor in at least 3 batches of at most 10, each completed in one attempt
    And they were processed in the order they were submitted

  @fault_injection
  Scenario: A failing task holds back the tasks behind it
    The spec's example: A, B, C and D arrive in one batch; A succeeds, B fails once, C is
    handed back from that batch without being attempted, then B, C and D complete in order.

    Given the task queue is empty
    And the processor's event source is paused
    When a client submits these tasks in order
      | task | behaviour  |
      | A    | succeeds   |
      | B    | fails once |
      | C    | succeeds   |
      | D    | succeeds   |
    And the processor's event source is resumed
    Then all submitted tasks are eventually COMPLETED
    And task A completed on attempt 1 in the first batch
    And task B failed on attempt 1 in that same batch and completed on attempt 2 in a later one
    And tasks C and D were handed back untried from the first batch and completed on attempt 1 later
    And they were processed in the order they were submitted
