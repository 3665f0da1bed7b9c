"""The ``lethe`` command: a thin layer over the engine; see docs/cli.md and ../shared/CONTRACT.md."""

from __future__ import annotations

import logging
import sys

from lethe.cli.core import app
from lethe.cli.privacy import register

register(app)

__all__ = ["app", "main"]


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    app()
