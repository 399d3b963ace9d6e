"""The SMTP backend against a real aiosmtpd server started by the test."""

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

from service.channels import Message, Skeleton
from service.channels.smtp import SmtpChannel
from service.usecases import dispatcher as make_dispatcher
from tests.test_dispatch import NOW, Clock, prepare, statuses


class Collector:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.sessions: set[int] = set()
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.sessions.add(id(session))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


def test_digests_go_out_over_one_reused_smtp_connection(factory, settings, smtp_server) -> None:
    collector, port = smtp_server
    smtp = settings.model_copy(update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port})
    prepare(factory, smtp, 12)
    make_dispatcher(factory, smtp, clock=Clock(NOW)).drain()
    assert statuses(factory) == {"sent": 12}
    assert len(collector.messages) == 12
    assert len(collector.sessions) == 1  # one connection for the whole batch
    first = collector.messages[0]
    assert first["Subject"].startswith("This week: ")
    assert first.get_body(("plain",)) is not None and first.get_body(("html",)) is not None
    assert first["X-Nudge-Delivery-Id"].isdigit()


def test_a_refused_recipient_fails_only_that_message(settings, smtp_server) -> None:
    collector, port = smtp_server
    collector.refuse.add("bad@x.org")
    smtp = settings.model_copy(update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port})
    skeleton = Skeleton(subject="Hello", html="<p>hi</p>", text="hi")
    channel = SmtpChannel(smtp)
    results = channel.send([
        Message(1, "digest", "good@x.org", "Good", skeleton),
        Message(2, "digest", "bad@x.org", "Bad", skeleton),
        Message(3, "digest", "also@x.org", "Also", skeleton),
    ])
    channel.close()
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert "550" in results[1].error
    assert len(collector.messages) == 2


def test_an_unreachable_server_means_retry(settings) -> None:
    smtp = settings.model_copy(update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": 9})
    skeleton = Skeleton(subject="Hello", html="<p>hi</p>", text="hi")
    results = SmtpChannel(smtp).send([Message(1, "digest", "a@x.org", "A", skeleton)] * 2)
    assert [r.status for r in results] == ["retry", "retry"]
