"""Run the CLI with ``python -m crimelens``."""

from .cli import main

main()
