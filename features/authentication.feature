@authentication
Feature: Only authenticated callers with the right to invoke create tasks
  The Task API's methods use IAM authorization: a request must be signed with AWS
  Signature Version 4 by a principal whose policies allow execute-api:Invoke on the
  method. API Gateway refuses anything else itself, with 403, before the API function
  runs, so nothing is stored or queued. The CORS preflight stays open: browsers never
  sign it.

  Scenario: An unauthenticated task submission is refused and creates nothing
    Given the task queue is empty
    When an anonymous client submits a valid task titled "Unsigned submission"
    Then the submission is refused with 403 "Missing Authentication Token"
    And no task titled "Unsigned submission" was stored
    And the task queue is still empty

  Scenario: An unauthenticated task lookup is refused
    When a client submits a valid task titled "Looked up anonymously"
    And an anonymous client looks the task up
    Then the lookup is refused with 403 "Missing Authentication Token"

  Scenario: An authenticated client's task is accepted and completed
    When a client submits a valid task titled "Signed submission"
    Then the task is accepted with a new task id and the status QUEUED
    And the task is eventually COMPLETED

  @local_only
  Scenario: A credential without the right to invoke is refused and creates nothing
    Given the task queue is empty
    When a client whose credentials may not invoke the API submits a valid task titled "Not allowed to invoke"
    Then the submission is refused with 403 as not authorized to perform execute-api:Invoke
    And no task titled "Not allowed to invoke" was stored
    And the task queue is still empty

  Scenario: The CORS preflight is answered without credentials
    When an anonymous browser sends the CORS preflight for POST /tasks
    Then the preflight allows the API's methods and headers
