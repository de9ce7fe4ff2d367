"""The whole evaluation, as ``wukong bench``: ``python benchmarks/bench.py --quick``."""

import sys

from wukong.bench import main

if __name__ == "__main__":
    sys.exit(main())
