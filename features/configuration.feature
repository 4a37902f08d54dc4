@configuration
Feature: The deployed stack has the spec's settings
  The architecture spec fixes the numbers below and the production profile deploys exactly
  them. The ephemeral profile, which the local stack and CI run, keeps every one of them
  except two timings, so that retries and dead-letter moves take seconds instead of
  minutes: the queue's visibility timeout (4 s instead of 300 s) and the processor's
  timeout (3 s instead of 60 s; AWS requires a visibility timeout at least as long as
  the function's timeout). Each row runs on a stack of its own profile and is skipped on
  the other: `make verify` runs the features against an ephemeral local stack and then
  the @spec scenarios against a local stack deployed with the production profile.

  The spec's "3 attempts, then the dead-letter queue" is the processor's attempt budget:
  it tries a task at most 3 times and then forwards it to the dead-letter queue itself.
  The queue's own redrive (maxReceiveCount) is only a safety net above that budget, set
  to 31 receives = 10 tasks per batch x 3 attempts + 1: a healthy task handed back
  untried behind failing ones is received again each time, and a lower count would move
  it to the dead-letter queue before it had its attempts
  (docs/decisions/attempt-budget-and-redrive.md).

  Background:
    Given the Task API is available

  @spec
  Scenario Outline: The task queue and the dead-letter queue of the <profile> profile
    Given the stack runs the <profile> profile
    Then the task queue is a FIFO queue with content-based deduplication
    And the task queue hides a received message for <visibility> seconds
    And the task queue keeps a message for <retention> days
    And the task queue moves a message to the dead-letter queue once it has been received <redrive receives> times
    And the dead-letter queue is a FIFO queue that keeps a message for <dlq retention> days

    Examples:
      | profile    | visibility | retention | redrive receives | dlq retention |
      | production | 300        | 4         | 31               | 14            |
      | ephemeral  | 4          | 4         | 31               | 14            |

  @spec
  Scenario Outline: The processor and its event source in the <profile> profile
    Given the stack runs the <profile> profile
    Then the processor runs on Python <python>
    And the processor may run for <timeout> seconds with <memory> MB of memory
    And at most <concurrency> copies of the processor run at once
    And the processor gives a task at most <attempts> attempts
    And the processor reads the task queue in batches of up to <batch> messages and reports partial failures

    Examples:
      | profile    | python | timeout | memory | concurrency | attempts | batch |
      | production | 3.12   | 60      | 512    | 10          | 3        | 10    |
      | ephemeral  | 3.12   | 3       | 512    | 10          | 3        | 10    |

  @spec
  Scenario Outline: Test-only fault injection is <switch> in the <profile> profile
    Given the stack runs the <profile> profile
    Then fault injection is switched <switch> in the API and the processor

    Examples:
      | profile    | switch |
      | production | off    |
      | ephemeral  | on     |

  @spec
  Scenario: Production ignores requests for fault injection
    Given the stack runs the production profile
    When a client submits a task asking the processor to always fail
    And a client submits a task with a fault directive that does not exist
    Then both tasks are accepted and stored without a fault
    And both tasks are COMPLETED on their first attempt
