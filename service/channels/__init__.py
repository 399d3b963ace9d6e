"""Delivery channels: one module per way of sending, each behind :class:`Channel`.

A deployment has two routes: ``email`` (the backend NUDGE_EMAIL_BACKEND names)
and ``canvas`` (when Canvas is configured). Adding an email backend is one new
module and one line in :data:`EMAIL_BACKENDS`; nothing else names a channel.
"""

from service.channels.base import Channel, InlineImage, Message, Result, Skeleton, placeholder
from service.channels.canvas import CanvasChannel
from service.channels.outbox import OutboxChannel
from service.channels.sendgrid import SendGridChannel
from service.channels.smtp import SmtpChannel
from service.config import Settings

EMAIL_BACKENDS: dict[str, type[Channel]] = {"outbox": OutboxChannel, "smtp": SmtpChannel, "sendgrid": SendGridChannel}


def email_channel(settings: Settings) -> Channel:
    """The email backend chosen by NUDGE_EMAIL_BACKEND."""
    return EMAIL_BACKENDS[settings.email_backend](settings)


def route_names(settings: Settings) -> list[str]:
    """The names outbox rows carry for the channels this deployment sends through."""
    return ["email", CanvasChannel.name] if settings.canvas_enabled else ["email"]


def from_settings(settings: Settings) -> dict[str, Channel]:
    """Every channel this deployment sends through, by the name its outbox rows carry."""
    makers = {"email": email_channel, CanvasChannel.name: CanvasChannel}
    return {name: makers[name](settings) for name in route_names(settings)}


__all__ = ["Channel", "EMAIL_BACKENDS", "InlineImage", "Message", "Result", "Skeleton", "email_channel",
           "from_settings", "placeholder", "route_names"]
