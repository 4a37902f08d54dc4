"""Binds every ``*.feature`` file in this folder to pytest (steps: ``features/steps``)."""

from pytest_bdd import scenarios

scenarios(".")
