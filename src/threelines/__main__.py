"""``python -m threelines``: the same as the ``threelines`` command."""

from threelines.cli.main import main

main()
