"""``python -m ojpanel``: the same as the ``ojpanel`` command."""

from ojpanel.cli import main

if __name__ == "__main__":
    main()
