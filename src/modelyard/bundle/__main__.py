"""``python -m modelyard.bundle``: assemble the bundled models (see ``bundle.install``)."""

import sys

from modelyard.bundle.install import main

if __name__ == "__main__":
    sys.exit(main())
