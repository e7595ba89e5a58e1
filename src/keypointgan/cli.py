"""The command line's old import path, kept for ``python -m keypointgan.cli`` (e.g. under
``torchrun``) and for ``keypointgan`` scripts installed before the commands moved to
:mod:`keypointgan.commands.cli`."""

import sys

from .commands.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
