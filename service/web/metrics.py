"""Prometheus metrics of the web process."""

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.signals = Counter("nudge_tracking_signals_total", "Opens, clicks and acks received",
                               ["kind", "machine"], registry=self.registry)
        self.webhook_events = Counter("nudge_webhook_events_total", "SendGrid webhook events stored",
                                      ["type", "machine"], registry=self.registry)
        self.webhook_batches = Counter("nudge_webhook_batches_total", "SendGrid webhook batches by outcome",
                                       ["outcome"], registry=self.registry)
        self.invalid_tokens = Counter("nudge_invalid_tokens_total", "Requests with a forged or damaged token",
                                      ["endpoint"], registry=self.registry)
