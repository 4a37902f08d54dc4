"""The load suite's harness side: settings, shapes, ledger, thresholds, reports, ``harness load``.

Everything here is plain Python that never imports locust (locust gevent-patches the
process); the locustfiles under ``loadtest/`` import from here, not the other way round.
"""
