"""``python -m sdsen``: the command line (also ``torchrun -m sdsen train ...``)."""

from sdsen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
