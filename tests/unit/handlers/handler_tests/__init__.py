"""Unit tests of the Lambda handlers (moto ``mock_aws``, realistic Lambda events).

The package has its own name, not ``handlers``, so it never shadows the code under test.
"""
