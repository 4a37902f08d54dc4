@fault_injection @retry
Feature: Failed tasks are retried
  A task whose processing fails goes back to the queue and is tried again, up to three
  attempts in all. A task that succeeds within those attempts completes normally and
  never reaches the dead-letter queue. Every attempt is recorded on the task.

  Background:
    Given the Task API is available

  Scenario Outline: A task that fails <failures> time(s) completes on attempt <attempt>
    When a client submits a task that fails its first <failures> attempts
    Then the task is eventually COMPLETED
    And it completed on attempt <attempt>
    And its history shows <failures> failed attempt(s), then the completed one
    And it is not in the dead-letter queue

    Examples:
      | failures | attempt |
      | 1        | 2       |
      | 2        | 3       |
