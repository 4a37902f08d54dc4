@dead_letter
Feature: Tasks that cannot be processed go to the dead-letter queue
  A task that keeps failing is moved to the dead-letter queue after exactly three
  receives, is marked FAILED and raises the dead-letter alarm; the tasks behind it then
  complete in order. A message that can never be processed (not a task at all) goes to
  the dead-letter queue at once, exactly once, without retries. An operator can send
  dead-lettered tasks back once the cause is fixed.

  Background:
    Given the Task API is available

  @fault_injection
  Scenario: A task that always fails is dead-lettered after exactly 3 receives
    Given the dead-letter queue is empty
    And the dead-letter alarm is OK and its window holds no failures
    When a client submits a task that always fails
    And a client submits 2 valid tasks right after it
    Then the failing task is in the dead-letter queue after exactly 3 receives
    And it is marked FAILED after 3 attempts
    And the dead-letter alarm goes off
    And the tasks behind it are COMPLETED afterwards, in submission order

  Scenario: A malformed message is dead-lettered at once, exactly once
    Given the task queue is empty
    When a message that is not a task is put on the task queue
    Then the task queue no longer holds it before a visibility timeout has passed
    And the dead-letter queue holds exactly one copy of it, with the reason it was rejected
    And that copy was forwarded on the message's first receive

  @fault_injection
  Scenario: A dead-lettered task completes after its fault is cleared and it is sent back
    Given a task that always fails has been dead-lettered
    When its fault is cleared and it is sent back from the dead-letter queue
    Then the task is eventually COMPLETED

  @fault_injection @dlq_operations
  Scenario: An operator lists more than a batch of dead-lettered tasks and replays them in order
    Given the dead-letter queue is empty
    And 12 tasks that always fail have been dead-lettered
    When the operator lists the dead-letter queue
    Then the list shows the 12 tasks in the order they failed, each given up after 3 attempts with its error
    And the dead-letter queue's own count agrees with the list
    When their fault is cleared and the operator replays every dead-lettered task
    Then the 12 tasks are COMPLETED in the order they failed
    And none of them was completed or delivered twice
