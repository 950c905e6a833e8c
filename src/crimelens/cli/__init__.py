"""The crimelens command line (typer): parse options, call one library function, render the result."""

from crimelens.cli.app import app, main

__all__ = ["app", "main"]
