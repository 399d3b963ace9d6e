"""PostgreSQL connections killed mid-run (pg_terminate_backend on our own connections)."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from service.db import make_engine, make_sessionmaker
from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.doubles.sendgrid import Fault
from service.models import Delivery, DeliveryItem, utcnow
from tests.conftest import REPO, add_people, store_policy

PEOPLE = 6000


def killer(database_url: str, application: str, after: float, done: list[int]) -> threading.Thread:
    def run() -> None:
        time.sleep(after)
        admin = make_engine(database_url)
        with admin.connect() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :app AND pid <> pg_backend_pid()"), {"app": application}).scalar()
            conn.commit()
        admin.dispose()
        done.append(killed)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def pg_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend needs PostgreSQL")
    return database_url


def test_a_killed_connection_during_compose_leaves_no_half_written_rows(pg_only, factory, settings):
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, PEOPLE)
    engine = make_engine(pg_only, connect_args={"application_name": "nudge-compose"})
    victims = make_sessionmaker(engine)
    done: list[int] = []
    thread = killer(pg_only, "nudge-compose", 0.3, done)
    failed = False
    try:
        with victims() as s, s.begin():
            compose(s, settings, utcnow(), SchoolCalendar(), week="2026-W50")
            time.sleep(1.0)  # still inside the transaction when the connection dies
    except DBAPIError:
        failed = True
    thread.join()
    assert failed and done == [1]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0  # all or nothing
    with victims() as s, s.begin():  # the rerun (a fresh connection from the pool) completes
        compose(s, settings, utcnow(), SchoolCalendar(), week="2026-W50")
    with factory() as s:
        per_delivery = s.execute(select(DeliveryItem.delivery_id, func.count())
                                 .where(DeliveryItem.tip_id.is_not(None)).group_by(DeliveryItem.delivery_id)).all()
        asked = s.scalar(select(func.count()).select_from(DeliveryItem).where(DeliveryItem.question_id.is_not(None)))
        assert s.scalar(select(func.count()).select_from(Delivery)) == PEOPLE
    assert {n for _, n in per_delivery} == {settings.tips_per_digest} and len(per_delivery) == PEOPLE
    assert asked == PEOPLE  # and each its question
    engine.dispose()


def test_a_killed_connection_during_dispatch_recovers(pg_only, factory, sendgrid_settings, sendgrid_double):
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": 250, "dispatch_lease_seconds": 1})
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, 3000)
    with factory() as s, s.begin():
        compose(s, settings, utcnow() - timedelta(minutes=1), SchoolCalendar(), week="2026-W50")
    sendgrid_double.inject(*[Fault(delay=0.2)] * 20)
    engine = make_engine(pg_only, connect_args={"application_name": "nudge-dispatch"})
    dispatcher = make_dispatcher(make_sessionmaker(engine), settings)
    done: list[int] = []
    thread = killer(pg_only, "nudge-dispatch", 0.5, done)
    try:
        dispatcher.drain()
        crashed = False
    except DBAPIError:
        crashed = True  # a clean failure: the transaction in hand rolled back
    thread.join()
    time.sleep(1.2)  # leases of the interrupted batch run out
    dispatcher.drain()  # the pool replaces the dead connection; the run completes
    with factory() as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())
    received = [e.to_email for e in sendgrid_double.emails]
    print(f"\nkilled {done} connection(s), crashed: {crashed}; statuses {statuses}; "
          f"duplicates: {len(received) - len(set(received))}")
    assert len(received) == len(set(received))  # digests: at most once
    assert statuses.get("sent", 0) + statuses.get("unconfirmed", 0) == 3000
    assert statuses.get("unconfirmed", 0) <= 250
    engine.dispose()
