"""Factor analysis of the big-object optimisations (SoCC'20): ``wukong experiment factor-analysis``.

Targets: with everything on, bytes written on SVD2 at most a third of everything off, and wall time
on the embedded store within 1.3x of the ideal store.

    python benchmarks/locality.py [--repeat 3] [--quick] [--out benchmarks/results]
"""

import sys

from wukong.experiments import main

if __name__ == "__main__":
    sys.exit(main(["factor-analysis", *sys.argv[1:]]))
