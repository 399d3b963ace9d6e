"""Logs never carry an email address or a token at INFO."""

import json
import logging

from service.config import load_settings
from service.logs import JsonFormatter, Redact


def test_a_slipped_address_or_token_is_masked() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to %s via http://h/c/%s", (
        "ann.lee@example.org", "YzF8aHR0cHM6Ly9leGFtcGxlLm9yZw.abcdefABCDEF0123"), None)
    Redact().filter(record)
    assert record.getMessage() == "sent to [email] via http://h/c/[token]"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info" and line["message"] == "sent to [email] via http://h/c/[token]"


def test_a_whole_simulated_fortnight_logs_no_address_at_info(tmp_path, caplog) -> None:
    from service import simulate

    with caplog.at_level(logging.INFO):
        simulate.run(2, seed=5, outbox_dir=tmp_path)
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("service", "jobs", "uvicorn", "apscheduler")]
    assert ours  # the service did log (dispatch batches, the generated key...)
    for record in ours:  # the simulated readers' own HTTP client is not the service
        message = record.getMessage()
        assert "@" not in message or "@policy-nudge" in message, message
        assert "/c/" not in message and "/ack/" not in message, message
    from service.logs import configure

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure(load_settings(log_format="json"))
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("canvasapi").level == logging.WARNING  # it logs request URLs at INFO
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_database_errors_and_uvicorn_lines_are_redacted(capsys) -> None:
    """A database error's statement values (names, addresses) never reach the log, and uvicorn's own
    loggers go through the same handler (JSON when asked)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    from service.logs import configure

    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (email TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO people VALUES ('ann.lee@example.org')"))
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure(load_settings(log_format="json"))
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO people VALUES (:e)"), {"e": "ann.lee@example.org"})
        except IntegrityError:
            logging.getLogger("service.roster").exception("roster import failed")
        logging.getLogger("uvicorn.error").error("Exception in ASGI application for bob@example.org")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["logger"] for line in lines] == ["service.roster", "uvicorn.error"]
    assert "[parameters: hidden]" in lines[0]["error"] and "example.org" not in json.dumps(lines)
