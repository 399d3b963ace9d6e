"""The honest-engagement scenario, with its figures printed: six school weeks of 30 staff (10 behind
link scanners, 10 who click or confirm, 10 silent, 3 of them opening only) and their two leads,
played through the real doors by the scenario of ``tests/test_honest_engagement.py``.

Prints, per weekly summary to the team's lead, the headline rate against the hand count (10 of
30 engage every week); who was nudged per group; and for every escalation email the count in its
subject against the distinct people it lists. Runs on a throwaway SQLite database (~5 s).

    python bench/engagement_scenario.py
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.config import load_settings  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.db.migrate import upgrade  # noqa: E402
from service.doubles.sendgrid import SendGridDouble  # noqa: E402
from service.models import Escalation, Person  # noqa: E402
from tests.test_honest_engagement import ENGAGED, SCANNED, SILENT, play, school  # noqa: E402


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="nudge-engagement-"))
    url = f"sqlite:///{workdir / 'scenario.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with SendGridDouble() as sendgrid:
        base = load_settings(database_url=url, outbox_dir=str(workdir / "outbox"))
        web = base.model_copy(update={"secret_key": SecretStr("bench-key"), "base_url": "http://nudge.test",
                                      "sendgrid_webhook_public_key": sendgrid.public_key})
        mail = base.model_copy(update={"sendgrid_host": sendgrid.url, "sendgrid_api_key": SecretStr(sendgrid.api_key)})
        settings = school.__wrapped__(factory, mail, web, workdir)
        play(factory, settings, sendgrid)
        emails = sendgrid.emails
    with factory() as s:
        email_of = dict(s.execute(select(Person.id, Person.email)).tuples().all())
        nudged = {email_of[p] for p, level in s.execute(
            select(Escalation.person_id, Escalation.level).where(Escalation.reason == "never_engaged")) if level == 0}
    print("nudged: scanner-only %d of 10, silent %d of 10, engaged %d of 10"
          % (len(nudged & set(SCANNED)), len(nudged & set(SILENT)), len(nudged & set(ENGAGED))))
    for e in emails:
        if e.custom_args.get("kind") == "summary" and e.to_email == "lead@x.org":
            rows = re.findall(r"^  - (.+?): (.+?) \(", e.text, re.MULTILINE)
            print(f"summary: {e.subject!r}; hand count 10 of 30; rows marked engaged: "
                  f"{sum(status == 'engaged' for _, status in rows)}")
    for e in emails:
        if e.custom_args.get("kind") == "escalation":
            listed = re.findall(r"^- (.+?): ", e.text.split("Emails we could not deliver")[0], re.MULTILINE)
            print(f"escalation to {e.to_email}: {e.subject!r}; lines {len(listed)}, distinct people {len(set(listed))}")


if __name__ == "__main__":
    main()
