"""``python -m synthctl``: the command line (same as the ``synthctl`` entry point)."""

from synthctl.cli import main

if __name__ == "__main__":
    main()
