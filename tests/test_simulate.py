"""The simulated demo: deterministic, every channel and persona exercised, emails written out."""

import email
from email import policy
from pathlib import Path

from service import simulate


def test_two_weeks_are_deterministic_and_exercise_the_real_paths(tmp_path: Path) -> None:
    first = simulate.run(3, seed=11, outbox_dir=tmp_path / "a")
    second = simulate.run(3, seed=11, outbox_dir=tmp_path / "b")
    assert [r.cells() for r in first.rows] == [r.cells() for r in second.rows]
    assert first.personas == second.personas and all(first.personas.values())
    week1 = first.rows[0]
    assert week1.digests == 40 and week1.canvas_posts == 1
    assert week1.human_opens > 0 and week1.machine_opens > 0 and week1.clicks > 0  # readers went through HTTP
    assert first.rows[2].canvas_posts == 2  # the weekly tip and the policy-update notice
    notices = list((tmp_path / "a" / "notice").glob("*.eml"))
    assert len(notices) == 40  # everyone got the update (the double accepts bouncing addresses too)
    message = email.message_from_bytes(sorted((tmp_path / "a" / "summary").glob("*.eml"))[0].read_bytes(),
                                       policy=policy.default)
    assert any(part.get_content_type() == "image/png" for part in message.walk())  # the chart came along
    assert first.outbox_files == sum(1 for _ in (tmp_path / "a").rglob("*.eml"))


def test_cli_simulate_prints_the_weekly_table(tmp_path, capsys, monkeypatch) -> None:
    from tests.helpers import run_cli

    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(tmp_path))
    code, out, err = run_cli(capsys, "simulate", "--weeks", "2", "--people", "60", "--seed", "3")
    assert code == 0, err
    assert "2026-W37" in out and "2026-W38" in out and "personas:" in out
    assert len(list((tmp_path / "simulation" / "digest").glob("*.eml"))) == 120
