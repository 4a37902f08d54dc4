@deduplication
Feature: Duplicates change nothing
  Delivery is at least once, so the processor may see a task twice; it applies each task
  once and counts the duplicate. The queue itself drops an identical message sent again
  within its five-minute deduplication window.

  Background:
    Given the Task API is available

  Scenario: The same task delivered twice changes it once
    Given a task has been COMPLETED
    When the same task is delivered to the processor again
    Then the duplicate delivery is counted on the task
    And the task is still COMPLETED with its original completion time

  Scenario: An identical message sent again inside the deduplication window is dropped
    Given a task has been COMPLETED
    When the identical message is sent to the queue again within the deduplication window
    And a later task has been COMPLETED
    Then the identical message was not delivered to the processor again
