@ordering
Feature: Tasks are processed in the order they were submitted
  All tasks share one message group, so the processor handles them strictly one after
  another, in submission order, even across batches and retries. A task that fails holds
  back the tasks behind it until it succeeds or is dead-lettered.

  Background:
    Given the Task API is available

  Scenario: Tasks submitted in sequence are processed in that order
    When a client submits 5 valid tasks one after another
    Then all submitted tasks are eventually COMPLETED
    And they were processed in the order they were submitted

  Scenario: Order holds across batches
    When a client submits 25 valid tasks one after another
    Then all submitted tasks are eventually COMPLETED
    And they were processed in the order they were submitted

  @fault_injection
  Scenario: A failing task holds back the tasks behind it
    The spec's example: A succeeds, B fails once, C is not attempted before B succeeds,
    then B, C and D complete in order.

    When a client submits these tasks in order
      | task | behaviour  |
      | A    | succeeds   |
      | B    | fails once |
      | C    | succeeds   |
      | D    | succeeds   |
    Then all submitted tasks are eventually COMPLETED
    And task B completed on attempt 2
    And task C was not completed before task B
    And they were processed in the order they were submitted
