import sys

from lrlib.cli import main

sys.exit(main())
