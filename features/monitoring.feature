@monitoring
Feature: The stack watches itself
  CloudWatch alarms warn when the API or the processor fails too often and as soon as a
  message lands in the dead-letter queue.

  Background:
    Given the Task API is available

  Scenario Outline: The <alarm> alarm has the threshold of the spec
    Then the <alarm> alarm goes off when <metric> is <comparison> <threshold> within <minutes> minute(s)

    Examples:
      | alarm            | metric                      | comparison               | threshold | minutes |
      | API errors       | the API function's errors   | more than                | 5         | 5       |
      | processor errors | the processor's errors      | more than                | 10        | 5       |
      | dead-letter      | the dead-letter queue depth | greater than or equal to | 1         | 1       |

  @fault_injection
  Scenario: Processor errors show up in its error metric
    When the processor crashes while handling a task
    Then the processor's error metric counts the crash
