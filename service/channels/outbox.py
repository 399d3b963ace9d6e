"""The default, offline backend: each email becomes an ``.eml`` file in NUDGE_OUTBOX_DIR."""

from __future__ import annotations

import os
from pathlib import Path

from service.channels.base import Message, Result, unsendable
from service.channels.mime import Sender, build_mime
from service.config import Settings


class OutboxChannel:
    name = "outbox"

    def __init__(self, settings: Settings):
        self.directory = Path(settings.outbox_dir)
        self.sender = Sender.from_settings(settings)

    def send(self, messages: list[Message]) -> list[Result]:
        results = []
        for message in messages:
            try:
                results.append(self._write(message))
            except OSError as exc:
                results.append(Result.retry(f"cannot write outbox file: {exc.strerror}"))
            except Exception as exc:  # noqa: BLE001 - one bad message never stops the batch
                results.append(unsendable(message, exc))
        return results

    def _write(self, message: Message) -> Result:
        folder = self.directory / message.kind
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{message.delivery_id:08d}.eml"
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(bytes(build_mime(message, self.sender)))
        os.replace(tmp, folder / name)  # a reader never sees half a file
        return Result.sent(f"{message.kind}/{name}")

    def close(self) -> None:
        pass
