Feature: Report demo
  A small feature whose failures are deliberate: what the QA report makes of them.

  Background:
    Given a stub server

  Scenario Outline: The server names thing <number>
    When the client asks for thing <number>
    Then the answer says <word>

    Examples:
      | number | word  |
      | 1      | one   |
      | 2      | three |

  Scenario: A failed step is followed by steps that never ran
    When the client asks for thing 1
    Then the answer says two
    And nothing else happens

  Scenario: A stopped server is named in plain words
    When the client asks a stopped server
    Then nothing else happens

  Scenario: A stack that does not deploy is named as such
    When the client uses a stack that does not deploy
    Then nothing else happens

  Scenario: Calls are recorded, redacted and bounded
    When the client posts a secret
    And the client lists the queues
    And the client polls thing 1 40 times
    And a background thread asks for thing 5000
    And the client asks for 200 different things
    Then nothing else happens

  Scenario: Interrupted
    When the test waits for Ctrl-C
    Then nothing else happens
