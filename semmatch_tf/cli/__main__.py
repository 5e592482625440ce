"""``python -m semmatch_tf.cli``."""

import sys

from semmatch_tf.cli.app import main

sys.exit(main())
