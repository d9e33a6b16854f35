"""`python -m inlayer.server`: the same as `inlayer serve`."""

import sys

from .cli import main

sys.exit(main())
