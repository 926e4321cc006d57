"""``python -m scalelab``: the same as the ``scalelab`` command (for environments without the entry point)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from .cli.app import main

    sys.exit(main())
