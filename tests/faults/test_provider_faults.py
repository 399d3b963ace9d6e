"""Providers misbehaving: SendGrid storms and Canvas throttling/5xx, then everything delivered exactly as promised."""

import collections
from datetime import timedelta

from sqlalchemy import func, select

from service.weeks import SchoolCalendar
from service.digests import compose
from service import usecases
from service.doubles.sendgrid import Fault
from service.models import Delivery, utcnow
from tests.conftest import REPO, add_people, store_policy
from tests.test_canvas import NO_BREAKS, canvas_settings, double, make_dispatcher  # noqa: F401

PEOPLE = 2000


def test_sendgrid_storm_everything_delivered_once_retries_bounded(factory, sendgrid_settings, sendgrid_double):
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": 200, "dispatch_max_attempts": 8})
    now = utcnow() - timedelta(hours=1)
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, PEOPLE)
    with factory() as s, s.begin():
        compose(s, settings, now, SchoolCalendar(), week="2026-W50")
    storm = ([Fault(status=429, retry_after=30)] * 4 + [Fault(status=500), Fault(status=503)] * 3
             + [Fault(drop=True)] * 2 + [Fault(delay=0.3)] * 2)
    sendgrid_double.inject(*storm)
    clock = [now]
    dispatcher = usecases.dispatcher(factory, settings, clock=lambda: clock[0])
    passes = 0
    while True:
        passes += 1
        dispatcher.drain()
        with factory() as s:
            pending = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "pending"))
        if not pending or passes > 30:
            break
        clock[0] += timedelta(hours=1)
    received = collections.Counter(e.to_email for e in sendgrid_double.emails)
    with factory() as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())
        attempts = s.scalar(select(func.max(Delivery.attempts)))
    print(f"\nstorm: {sendgrid_double.attempts} requests, {passes} passes, statuses {statuses}, max attempts {attempts}, "
          f"lost: {PEOPLE - len(received)}, duplicates: {sum(n - 1 for n in received.values())}")
    assert statuses == {"sent": PEOPLE}
    assert len(received) == PEOPLE and max(received.values()) == 1
    assert attempts <= settings.dispatch_max_attempts


def test_permanent_400s_fail_with_their_reason_and_the_rest_go_out(factory, sendgrid_settings, sendgrid_double):
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": 100})
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, 300)
    with factory() as s, s.begin():
        compose(s, settings, utcnow() - timedelta(hours=1), SchoolCalendar(), week="2026-W50")
    sendgrid_double.inject(Fault(status=400), Fault(status=400))  # a batch refused for one message: that one
    usecases.dispatcher(factory, settings).drain()
    with factory() as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())
        reasons = set(s.scalars(select(Delivery.last_error).where(Delivery.status == "failed")))
    assert statuses == {"failed": 1, "sent": 299}  # the batch's other 99 went out one by one
    assert sendgrid_double.attempts == 1 + 100 + 2
    assert reasons == {"SendGrid 400: injected 400"}


def test_canvas_throttling_and_server_errors_still_one_post_per_course_and_week(factory, loaded, canvas_settings,
                                                                               double):
    double.throttle_every = 3
    monday = utcnow() - timedelta(days=1)
    clock = [monday]
    dispatcher, api = make_dispatcher(factory, canvas_settings, clock=lambda: clock[0])
    from service import canvas

    for week in ("2026-W48", "2026-W49", "2026-W50"):
        double.fail_next = 2
        double.fail_after_create = 1
        with factory() as s, s.begin():
            canvas.compose_weekly(s, canvas_settings, clock[0], NO_BREAKS, week=week)
        for _ in range(4):
            dispatcher.drain()
            clock[0] += timedelta(hours=2)
    per_course_week = collections.Counter((t.course_id, t.message.split("ref pn-tip-")[1][:12]) for t in
                                          double.announcements())
    print(f"\ncanvas: {double.calls} calls, throttled {api.throttled}, posts {dict(per_course_week)}")
    assert len(per_course_week) == 6 and set(per_course_week.values()) == {1}
    assert api.throttled > 0
