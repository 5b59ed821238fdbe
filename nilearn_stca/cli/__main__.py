"""``python -m nilearn_stca.cli``: the ``nilearn-stca`` command."""

import sys

from . import main

sys.exit(main())
