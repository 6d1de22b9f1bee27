"""``python -m npconv``: the same as the ``npconv`` command."""

import sys

from .cli import main

sys.exit(main())
