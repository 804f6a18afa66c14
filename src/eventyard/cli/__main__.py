"""``python -m eventyard.cli``: the same as the ``eventyard`` command."""

from eventyard.cli import main

main()
