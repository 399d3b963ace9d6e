"""Scheduled job entry points: each calls one use-case of :mod:`service.usecases` with the time now.

``now`` (and the dispatcher's ``clock``) can be given, so the jobs run over simulated weeks in tests.
"""
