"""Scheduled job entry points: thin wrappers that call the domain modules."""
