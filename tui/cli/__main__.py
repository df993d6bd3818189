"""``python -m tui.cli``: the same as the ``pgdeck`` command."""

from tui.cli import main

raise SystemExit(main())
