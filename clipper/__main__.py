"""``python -m clipper`` is the same as the ``clipper`` console script."""

from clipper.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
