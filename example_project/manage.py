#!/usr/bin/env python
"""Django's command-line utility for the example project (run it from this directory)."""

import os
import sys
from pathlib import Path

#: The repository root: the example runs against this checkout's requestforge_django,
#: installed or not.
REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(1, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
