@lifecycle
Feature: An answer tells the truth about what happens to the task
  A task is stored PENDING, sent to the queue and confirmed QUEUED before the API answers
  200, so every 200 means the task will end COMPLETED or FAILED. When the message could not
  be sent (or its response was lost although it arrived), the task is cancelled before the
  API answers 503, so a 503 means nothing of it will ever be processed. When not even that
  can be written, the API says the outcome is unknown. A PENDING task whose deadline passes
  is CANCELLED: nothing is left stranded. A retry with the same Idempotency-Key always ends
  in one task, processed once.

  Every attempt of the processor is recorded on the task. A task gets exactly 3 attempts;
  when its last one crashes, it alone is dead-lettered on its next delivery and the tasks
  that were received with it in the same batch are processed normally.

  Background:
    Given the Task API is available

  @fault_injection
  Scenario Outline: A submission whose <step> is answered <answer>, and its retry
    The processor is paused while the API answers, so the answer cannot depend on how fast
    the processor happens to be (a task it takes first is answered 200: unit-tested).

    Given the task queue is empty
    And the processor's event source is paused
    When a client submits a valid task with an idempotency key while "<fault>" happens behind the API
    Then the API answers <answer>
    When the processor's event source is resumed
    Then the task <fate>
    When the client retries with the same idempotency key and no fault
    Then the retry is accepted with the same task, which is COMPLETED once

    Examples:
      | step                              | fault                   | answer                      | fate                                            |
      | store fails                       | store-fails             | 503                         | was never stored                                |
      | send fails                        | send-fails              | 503                         | is CANCELLED and never processed                |
      | send's response is lost           | send-lost               | 503                         | is CANCELLED and never processed                |
      | send's response is lost, cancel fails | send-lost, cancel-fails | 500 with the outcome unknown | settles COMPLETED or CANCELLED by its deadline  |
      | confirm fails                     | confirm-fails           | 500 with the outcome unknown | settles COMPLETED or CANCELLED by its deadline  |
      | function ends after the store     | end-after-store         | 502 from API Gateway        | is CANCELLED once its deadline passes, never processed |
      | function ends after the send      | end-after-send          | 502 from API Gateway        | settles COMPLETED or CANCELLED by its deadline  |

  @fault_injection
  Scenario: A crash on a task's last attempt dead-letters it alone; the tasks in its batch complete
    Given the task queue is empty
    And the processor's event source is paused
    When a client submits a valid task, a task that crashes the processor on each of its 3 attempts, and 3 valid tasks
    And the processor's event source is resumed
    Then the crashing task is FAILED after exactly 3 attempts with the failure code "interrupted"
    And it is in the dead-letter queue, forwarded by the processor without a fourth attempt
    And the tasks behind it are COMPLETED after 1 attempt each, in submission order
    And they were received with the crashing task at every one of its attempts
    And no task was applied twice

  Scenario: Every attempt is recorded on the task
    When a client submits a valid task titled "Recorded"
    Then the task is eventually COMPLETED
    And its history shows attempt 1 started and completed by the same invocation
