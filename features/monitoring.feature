@monitoring
Feature: The stack watches itself
  Three CloudWatch alarms warn an operator. API errors: requests the API answered with a
  5xx (its own 500 and 503 answers, and its crashes and timeouts, which API Gateway answers
  502 or 504) more than 5 in 5 minutes. Processor errors: processor invocations that failed
  plus task records that failed in it (attempts that will be retried and last attempts)
  more than 10 in 5 minutes. Dead-letter: the dead-letter queue holds 1 message or more.
  Each alarm goes off from real failures of its kind at its threshold, and stays OK one
  below it.

  How the 5-minute window is evaluated here: the local stack evaluates each alarm every
  second over a sliding window that ends at that moment (the last 5 minutes), where
  CloudWatch evaluates clock-aligned 5-minute periods after they close. The sum over 5
  minutes is the same; the local alarm goes off as soon as the window holds enough, instead
  of up to 5 minutes later. So that no failure of an earlier scenario counts, each scenario
  first waits until its alarm is OK and its whole window holds none (up to 5 minutes after
  the last one), then counts only its own failures. The monitoring scenarios run first in a
  session, so that wait is usually over at once.

  Both functions are traced with X-Ray (active tracing): each sampled request leaves a
  trace of what the functions did, down to each call to DynamoDB and SQS. A client can ask
  for its request to be traced by starting the trace itself (a sampled X-Amzn-Trace-Id
  header). A function uploads its traces with its own role: without the right to, they
  are lost. (The processor's invocations are sampled by X-Ray's default rule, the first
  each second and then 5 %, which no client can force, so no scenario waits for one.)

  Background:
    Given the Task API is available

  @spec
  Scenario Outline: The <alarm> alarm has the spec's threshold
    Then the <alarm> alarm goes off when <metric> is <comparison> <threshold> within <minutes> minute(s)

    Examples:
      | alarm            | metric                                                   | comparison               | threshold | minutes |
      | API errors       | the requests the API answered with a 5xx                 | more than                | 5         | 5       |
      | processor errors | the processor's failed invocations plus its failed records | more than              | 10        | 5       |
      | dead-letter      | the dead-letter queue depth                              | greater than or equal to | 1         | 1       |

  Scenario: The API counts each task it accepts in its own metrics
    Given the API's TasksAccepted count is noted
    When a client submits 3 valid tasks one after another
    Then the API's TasksAccepted count went up by exactly 3

  @fault_injection
  Scenario: The API errors alarm stays OK at 5 failed requests and goes off at 6
    Given the API errors alarm is OK and its window holds no failures
    When 5 submissions are answered 503 because storing the task fails behind the API
    Then the API errors alarm has counted 5 and stays OK
    When 1 more submission is answered 503 because sending the task fails behind the API
    Then the API errors alarm goes off

  @fault_injection
  Scenario: The processor errors alarm stays OK at 10 failures and goes off at 11
    Given the processor errors alarm is OK and its window holds no failures
    When 3 tasks fail each of their 3 attempts and 1 task fails its first attempt
    Then the processor errors alarm has counted 10 and stays OK
    When the processor crashes on 1 more task
    Then the processor errors alarm goes off

  @fault_injection
  Scenario: The dead-letter alarm stays OK with no message and goes off at the first one
    Given the dead-letter queue is empty
    And the dead-letter alarm is OK and its window holds no failures
    Then the dead-letter alarm has counted 0 and stays OK
    When a task that always fails is dead-lettered
    Then the dead-letter alarm goes off

  @tracing
  Scenario: A task submitted in a sampled trace leaves the API's calls in X-Ray
    When a client submits a valid task in a new sampled X-Ray trace
    Then the task is eventually COMPLETED
    And X-Ray holds that trace with the API function's segment and its calls to DynamoDB and SQS
