@configuration
Feature: The deployed stack has the settings of its profile
  What runs is what the profile says: the queues, the dead-letter policy, the event
  source mapping and the functions of the running stack carry the profile's values.

  Background:
    Given the Task API is available

  Scenario: The task queue and the dead-letter queue
    Then the task queue is a FIFO queue with content-based deduplication
    And the task queue has the profile's visibility timeout and retention period
    And the task queue sends a message to the dead-letter queue after the profile's number of receives
    And the dead-letter queue is a FIFO queue with the profile's retention period

  Scenario: The processor and its event source
    Then the processor runs Python 3.12 with the profile's timeout, memory and reserved concurrency
    And the processor reads the task queue in batches of the profile's size and reports partial failures

  Scenario: Test-only fault injection follows the profile
    Then fault injection is switched on only if the profile allows it
