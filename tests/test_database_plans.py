"""How PostgreSQL plans our statements: each for its own parameters, the database's own checks cached."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from service.models import Person


def test_statements_are_planned_for_their_parameters_and_foreign_key_checks_are_not(clean_db) -> None:
    """A report run again and again is never prepared (a prepared statement's generic plan treats a
    district's head like a lead of 19), while the foreign-key checks of a bulk write keep their cached
    plans (forcing custom plans server-wide re-planned each check: two thirds of writing digest items)."""
    if clean_db.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    with clean_db.connect() as conn:
        for supervisor_id in range(20):  # psycopg would prepare it from the sixth run on
            conn.execute(select(Person.id).where(Person.supervisor_id == supervisor_id)).all()
        assert conn.scalar(text("SELECT count(*) FROM pg_prepared_statements")) == 0
        assert conn.scalar(text("SHOW plan_cache_mode")) == "auto"
