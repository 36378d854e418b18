"""`python -m aebench ...` is the same as the `aebench` command."""

import sys

from aebench.cli import main

sys.exit(main())
