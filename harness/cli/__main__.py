import sys

from pathbench.cli.main import main

sys.exit(main())
