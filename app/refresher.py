"""Entry point of the background detection refresher: ``python -m app.refresher [--once] [--db PATH]``.

The work lives in `app.detection.refresher`; this module only lets supervisord (and people) start it.
"""

from app.detection.refresher import main

if __name__ == "__main__":
    raise SystemExit(main())
