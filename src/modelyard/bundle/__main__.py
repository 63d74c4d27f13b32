import sys

from modelyard.bundle.install import main

sys.exit(main())
