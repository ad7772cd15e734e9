"""The token layer must work with no Django at all (DESIGN: one direction of imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requestforge_django.tokens as tokens

PACKAGE = Path(tokens.__file__).parent


def test_tokens_import_without_django():
    code = (
        "import sys, requestforge_django.tokens as t; "
        "t.TokenManager; "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent.parent, timeout=60)


def test_no_module_mentions_django_imports():
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path.name
