"""Where the project's non-Python files live (templates, content, migrations).

They sit at the top of the repository, beside the package, as the design card
fixes; an editable or in-place install keeps this layout.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
CONTENT_DIR = PROJECT_ROOT / "content"
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
