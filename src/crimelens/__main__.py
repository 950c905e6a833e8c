"""Run the CLI with ``python -m crimelens``."""

from crimelens.cli import main

main()
