"""README's real-run path, from an empty folder with the installed `nudge` command: init, edit two
lines, db upgrade, roster import, serve. Nothing else configured, nothing copied from the repository."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO

NUDGE = str(Path(sys.executable).with_name("nudge"))


def run(folder: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_", "SENDGRID_", "CANVAS_"))}
    done = subprocess.run([NUDGE, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_path_from_an_empty_folder(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "edit NUDGE_BASE_URL and NUDGE_FROM_EMAIL" in run(tmp_path, "init")
    env_file = tmp_path / ".env"
    lines = env_file.read_text().splitlines()
    secret = next(line for line in lines if line.startswith("NUDGE_SECRET_KEY="))
    assert len(secret.split("=", 1)[1]) >= 43  # 32 random bytes
    env_file.write_text("\n".join(
        f"NUDGE_BASE_URL=http://127.0.0.1:{port}" if line.startswith("NUDGE_BASE_URL=") else
        "NUDGE_FROM_EMAIL=tips@school.example" if line.startswith("NUDGE_FROM_EMAIL=") else line
        for line in lines) + "\n")
    assert "loaded the built-in tips (27)" in run(tmp_path, "db", "upgrade")
    assert "created 40" in run(tmp_path, "roster", "import", str(REPO / "content" / "sample_roster.csv"))
    preview = run(tmp_path, "digest", "preview", "chloe.martin@example.org", "--week", "2026-W49")
    assert f"http://127.0.0.1:{port}/" in preview and "localhost:8000" not in preview
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_", "SENDGRID_", "CANVAS_"))}
    server = subprocess.Popen([NUDGE, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("nudge serve did not answer /healthz within 30 s")
        login = httpx.get(f"http://127.0.0.1:{port}/admin/login", timeout=5)
        assert login.status_code == 200 and "disabled" not in login.text.lower()  # the generated token is on
    finally:
        server.terminate()
        server.wait(15)
    assert (tmp_path / "nudge.db").exists()
