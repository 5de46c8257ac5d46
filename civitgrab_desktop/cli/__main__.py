"""`python -m civitgrab_desktop.cli` runs civitgrab-cli."""

import sys

from civitgrab_desktop.cli.main import main

sys.exit(main())
