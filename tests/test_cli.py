import subprocess
import sys

from tests.conftest import REPO
from tests.helpers import run_cli

CONTENT = REPO / "content"


def test_demo_sequence_and_status(cli_env, capsys) -> None:
    steps = [
        ("content", "import", str(CONTENT / "social_media.yaml")),
        ("policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"), "--policy", "social-media", "--version", "1"),
        ("roster", "import", str(CONTENT / "sample_roster.csv")),
    ]
    for step in steps:
        code, out, err = run_cli(capsys, *step)
        assert code == 0, err
    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    assert "People by role" in out and "teacher" in out and "coach" in out
    assert "Teams" in out and "María Okafor" in out
    assert "Tips by section" in out and "Employee-Student Relations" in out
    assert "Policies" in out and "social-media" in out
    # reimporting the same policy text stores nothing
    code, out, _ = run_cli(capsys, *steps[1][:-1], "2")
    assert code == 0 and "identical to version 1" in out


def test_usage_errors_exit_non_zero(cli_env, capsys) -> None:
    code, _, err = run_cli(capsys, "roster", "import")
    assert code == 2 and "Missing argument" in err
    code, _, err = run_cli(capsys, "policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"),
                           "--policy", "brand-new", "--version", "1")
    assert code == 1 and "give --title" in err


def test_python_dash_m_service_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    for command in ("db", "status", "roster", "content", "policy"):
        assert command in proc.stdout
