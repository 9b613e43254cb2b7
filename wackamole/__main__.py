"""`python -m wackamole` runs the wackamole command line."""

import sys

from wackamole.cli import main

sys.exit(main())
