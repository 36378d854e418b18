"""Test setup: tests import the toy task and models from this folder (`from toy import ...`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
