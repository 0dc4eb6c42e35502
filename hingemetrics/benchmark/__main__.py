"""``python -m hingemetrics.benchmark``: the update benchmark, or with ``--sync`` the sync-latency benchmark."""

import sys

from hingemetrics.benchmark.update import main

if __name__ == "__main__":
    sys.exit(main())
