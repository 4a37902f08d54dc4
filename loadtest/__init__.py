"""Locust scenarios for the Task API (run them with ``harness load``; see the README)."""
