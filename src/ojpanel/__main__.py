"""``python -m ojpanel`` is the ``ojpanel`` command."""

from ojpanel.cli import main

main()
