@api
Feature: Task submission and validation
  Clients submit tasks to the Task API. A valid task is accepted at once with a task id
  and processed in the background. An invalid one is rejected with a message that says
  which field is wrong and why, and nothing is queued for it.

  Rules of the spec: the title is required, 1 to 200 characters; the description is
  required, 1 to 2000 characters; the priority is required and one of low, medium or
  high in any letter case; the due date is optional and an ISO 8601 date or date-time
  with a time zone. Text is trimmed, normalized and has its markup escaped before it is
  stored. A request body may be at most 16 KiB (16384 bytes).

  Background:
    Given the Task API is available

  @acceptance
  Scenario: A valid task is accepted and completed
    When a client submits a valid task titled "Prepare the quarterly report"
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED
    And looking the task up shows it COMPLETED after 1 attempt

  @acceptance
  Scenario Outline: Every kind of task the API accepts is processed: <field> <value>
    Accepted is not enough: a task the API answers 200 for must reach the processor and
    complete, whatever its priority, due date or length, and be stored as the rules say.

    When a client submits a task whose <field> is <value>
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED
    And its stored <field> is <stored>

    Examples:
      | field       | value                                  | stored                      |
      | title       | 1 character long                       | as sent                     |
      | title       | 200 characters long                    | as sent                     |
      | title       | 200 characters long with spaces around | 200 characters long         |
      | description | 1 character long                       | as sent                     |
      | description | 2000 characters long                   | as sent                     |
      | priority    | "low"                                  | "low"                       |
      | priority    | "medium"                               | "medium"                    |
      | priority    | "high"                                 | "high"                      |
      | priority    | "Medium"                               | "medium"                    |
      | priority    | "HIGH"                                 | "high"                      |
      | priority    | " low "                                | "low"                       |
      | due date    | missing                                | absent                      |
      | due date    | null                                   | absent                      |
      | due date    | "2026-12-31"                           | "2026-12-31"                |
      | due date    | "2026-12-31T17:30:00Z"                 | "2026-12-31T17:30:00Z"      |
      | due date    | "2026-12-31T17:30:00+02:00"            | "2026-12-31T17:30:00+02:00" |
      | due date    | "2026-12-31T17:30:00+00:00"            | "2026-12-31T17:30:00Z"      |
      | due date    | "2026-12-31t17:30:00.25z"              | "2026-12-31T17:30:00.250000Z" |

  @validation
  Scenario Outline: Values just past each rule are rejected with a useful message
    When a client submits a task whose <field> is <value>
    Then the submission is rejected as invalid
    And the error points at the <field> and mentions "<hint>"

    Examples:
      | field       | value                  | hint        |
      | title       | missing                | required    |
      | title       | only spaces            | at least 1  |
      | title       | 201 characters long    | 200         |
      | description | missing                | required    |
      | description | only spaces            | at least 1  |
      | description | 2001 characters long   | 2000        |
      | priority    | "urgent"               | low         |
      | priority    | missing                | required    |
      | due date    | "2026-02-30"           | date        |
      | due date    | "2026-12-31T17:30:00"  | time zone   |
      | due date    | "next tuesday"         | ISO 8601    |

  @sanitization
  Scenario: Titles are trimmed, normalized and have their markup escaped
    When a client submits a task titled "  <b>Crème brûlée</b>  " written with combining accents
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED
    And the stored title is "&lt;b&gt;Crème brûlée&lt;/b&gt;" in composed form

  @sanitization
  Scenario: Descriptions keep tabs and new lines but lose other control characters
    When a client submits a task whose description holds a tab, a new line and a bell character
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED
    And the stored description keeps the tab and the new line but not the bell character

  @sanitization
  Scenario: A title is cleaned of control characters before its length is counted
    When a client submits a task whose title is 200 characters long with a bell character inside
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED
    And its stored title is 200 characters long

  @validation
  Scenario: A body of exactly 16384 bytes is accepted
    When a client submits a valid task padded to exactly 16384 bytes
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED

  @validation
  Scenario Outline: Requests that are not a task are rejected
    When a client sends <request>
    Then the request is rejected with status <status> and an error explaining why

    Examples:
      | request                                   | status |
      | a body that is not valid JSON             | 400    |
      | a list instead of a task                  | 400    |
      | a valid task labelled as plain text       | 415    |
      | a valid task padded to 16385 bytes        | 413    |
      | a task larger than the 16 KiB body limit  | 413    |
      | a task with a field the API does not know | 400    |

  Scenario: Browsers may call the API from other origins
    When a browser asks whether it may POST tasks from "https://app.example.com"
    Then the API allows that origin to POST tasks with a Content-Type header

  @idempotency
  Scenario: Retrying a submission with the same idempotency key creates one task
    When a client submits a valid task with a fresh idempotency key
    And the client retries exactly the same submission with the same key
    Then both answers carry the same task id
    And the task is eventually COMPLETED
    And the task was processed once

  @idempotency
  Scenario: Reusing an idempotency key for a different task is refused
    When a client submits a valid task with a fresh idempotency key
    And the client submits a different task with the same key
    Then the request is rejected with status 422 and an error explaining why
    And no task was created for the different body

  @idempotency @validation
  Scenario Outline: An idempotency key of <length> characters is <verdict>
    When a client submits a valid task with an idempotency key of <length> characters
    Then the key is <verdict>

    Examples:
      | length | verdict  |
      | 255    | accepted |
      | 256    | rejected |

  Scenario Outline: Looking up tasks that do not exist
    When a client looks up the task <task id>
    Then the request is rejected with status <status> and an error explaining why

    Examples:
      | task id                                | status |
      | 3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f   | 404    |
      | not-a-task-id                          | 400    |
