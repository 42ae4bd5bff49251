"""Replay one cassette in-process with `nano_code.testing.replay`; print a JSON line.

    python bench/replay_inprocess.py PATH

`seconds` is the replay alone; `import_seconds` is what importing the replayer
and vcrpy took before it (the part of a CLI replay that does not depend on
the cassette).
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    path = sys.argv[1]
    started = time.perf_counter()
    import vcr  # noqa: F401 - imported by the replay anyway; timed here with the rest

    from nano_code.testing import replay

    imported = time.perf_counter()
    report = replay(path)
    wall = time.perf_counter() - imported
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": report.status,
                "steps": report.steps,
                "seconds": wall,
                "import_seconds": imported - started,
                "report_seconds": report.seconds,
                "max_rss_kb": rss_kb,
                "error": report.error,
            }
        )
    )


if __name__ == "__main__":
    main()
