"""`python -m spread`: the spread daemon's command line."""

import sys

from spread.cli import main

if __name__ == "__main__":
    sys.exit(main())
