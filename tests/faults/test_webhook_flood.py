"""Webhook floods: many concurrent batches, duplicates across them, forged batches mixed in: exact counts."""

import random
import threading

from sqlalchemy import func, select

from service.models import EngagementEvent
from tests.test_webhook import delivered  # noqa: F401 - ten digests sent through the double


def test_flood_with_duplicates_and_bad_signatures(factory, live, sendgrid_double, delivered) -> None:  # noqa: F811
    rng = random.Random(9)
    unique = []
    for kind in ("processed", "delivered", "open", "click"):
        for _ in range(10):
            unique += sendgrid_double.events(kind, delivered, useragent="Mozilla/5.0 (Windows NT 10.0) Chrome/131")
    batches = []
    for _ in range(30):
        batches.append(rng.sample(unique, 60))  # overlapping: every event appears in several batches
    batches.append(unique)  # and once all together
    forged = [rng.sample(unique, 20) for _ in range(10)]
    results: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def post(events, signature=None, tag="good") -> None:
        status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", events, signature=signature)
        with lock:
            results.append((tag, status, answer))

    threads = [threading.Thread(target=post, args=(b,)) for b in batches]
    threads += [threading.Thread(target=post, args=(b, "MEUCIQCforgedforgedforged", "forged")) for b in forged]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = sum(a.get("stored", 0) for tag, status, a in results if tag == "good")
    with factory() as s:
        in_db = s.scalar(select(func.count()).select_from(EngagementEvent))
    print(f"\nflood: {len(batches)} good batches, {len(forged)} forged; unique events {len(unique)}; "
          f"stored {stored}; in database {in_db}")
    assert all(status == 200 for tag, status, _ in results if tag == "good")
    assert all(status == 403 for tag, status, _ in results if tag == "forged")
    assert in_db == len(unique) == stored  # each event exactly once, whatever the interleaving
