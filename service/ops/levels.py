"""``python -m service.ops.levels LEVEL...``: print those of the CPU levels this host runs (the
image's build bakes a kernel cache for each); see :func:`service.ops.cpu.main`. (A module of
its own: ``service.ops.cpu`` is imported with the package, so ``-m`` could not run it.)"""

import sys

from service.ops.cpu import main

if __name__ == "__main__":
    sys.exit(main())
