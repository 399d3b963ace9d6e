"""docker-compose.yml and the Dockerfile agree with the settings and the CLI (Docker does not run here)."""

import shlex

import yaml

from service.cli import app
from service.config import Settings, env_name
from tests.conftest import REPO

KNOWN_ENV = {env_name(field) for field in Settings.model_fields}


def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def cli_commands() -> set[str]:
    import typer

    command = typer.main.get_command(app)
    names = set()
    for name, sub in command.commands.items():
        names.add(name)
        for child in getattr(sub, "commands", {}):
            names.add(f"{name} {child}")
    return names


def test_compose_has_postgres_the_app_a_worker_and_mailpit() -> None:
    services = compose_file()["services"]
    assert set(services) == {"db", "app", "worker", "mailpit"}
    assert services["db"]["image"].startswith("postgres:16")
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert services["app"]["environment"] == services["worker"]["environment"]  # one configuration
    for name in ("app", "worker"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_environment_names_are_real_settings() -> None:
    env = compose_file()["services"]["app"]["environment"]
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    assert env["NUDGE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["NUDGE_EMAIL_BACKEND"] == "smtp" and env["NUDGE_SMTP_HOST"] == "mailpit"
    settings = Settings(database_url=env["NUDGE_DATABASE_URL"], email_backend=env["NUDGE_EMAIL_BACKEND"],
                        smtp_host=env["NUDGE_SMTP_HOST"], smtp_port=int(env["NUDGE_SMTP_PORT"]),
                        timezone=env["NUDGE_TIMEZONE"], base_url=env["NUDGE_BASE_URL"])
    assert settings.smtp_port == 1025


def test_compose_and_dockerfile_commands_exist_in_the_cli() -> None:
    known = cli_commands()
    services = compose_file()["services"]
    dockerfile = (REPO / "Dockerfile").read_text()
    commands = [services["app"]["command"][-1], services["worker"]["command"][-1],
                next(line for line in dockerfile.splitlines() if line.startswith("CMD")).split('"')[-2]]
    for command in commands:
        for step in command.split("&&"):
            words = shlex.split(step)
            assert words[0] == "nudge"
            sub = " ".join(w for w in words[1:3] if not w.startswith("-"))
            assert sub in known or words[1] in known, step
    assert "USER nudge" in dockerfile and "python:3.11-slim" in dockerfile
    for path in ("service", "jobs", "migrations", "templates", "content", "alembic.ini"):
        assert f"COPY {path}" in dockerfile or f" {path} " in dockerfile
