"""The ``eventyard`` command line: topics, produce, consume, groups and the demo walk.

``main`` is the console-script entry point (``eventyard = "eventyard.cli:main"``); ``app`` is
the typer application, for embedding or for generating documentation.
"""

from eventyard.cli.app import app, main

__all__ = ["app", "main"]
