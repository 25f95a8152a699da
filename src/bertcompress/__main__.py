import sys

from bertcompress.cli import main

sys.exit(main())
