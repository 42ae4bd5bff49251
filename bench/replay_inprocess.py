"""Replay one cassette in-process with `nano_code.testing.replay`; print a JSON line.

    python bench/replay_inprocess.py PATH            # the product as it is
    python bench/replay_inprocess.py --whatif PATH   # with the suggested replay fix patched in

--whatif applies, in this process only, the two changes suggested in
bench/README.md: (1) vcrpy looks for the request starting at the first unplayed
interaction instead of re-matching every interaction from index 0 (strict
in-order replay never plays an earlier one again anyway), and (2) the JSON
body matcher compares the raw bytes first, then parses each body once
(cached) and compares with `==` before falling back to the masked
`differences` walk, and (3) ReplayPerformer.compare returns at once when the
two bodies are equal instead of walking every node. The product code is not
edited.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any


def apply_whatif() -> None:
    import vcr.cassette
    from vcr.matchers import requests_match

    from nano_code.adapters import replay as replay_module
    from nano_code.kernel.jsondiff import differences

    def _responses(self: Any, request: Any) -> Any:
        request = self._before_record_request(request)
        start = getattr(self, "_bench_cursor", 0)
        while start < len(self.data) and self.play_counts[start] > 0:
            start += 1
        self._bench_cursor = start
        for index in range(start, len(self.data)):
            stored_request, response = self.data[index]
            if requests_match(request, stored_request, self._match_on):
                yield index, response

    vcr.cassette.Cassette._responses = _responses

    def body_matcher(masks: Any) -> Any:
        cache: dict[int, tuple[Any, Any]] = {}

        def parsed(body: Any) -> Any:
            hit = cache.get(id(body))
            if hit is not None and hit[0] is body:
                return hit[1]
            value = replay_module._json_body(body)
            cache[id(body)] = (body, value)  # keeps `body` alive, so the id stays valid
            return value

        def match(r1: Any, r2: Any) -> None:
            if r1.body == r2.body:  # same bytes: the usual case, no parsing at all
                return
            a, b = parsed(r1.body), parsed(r2.body)
            if a == b:
                return
            if not masks:
                raise AssertionError("bodies differ")
            found, _ = differences(a, b, masks, limit=1)
            if found:
                raise AssertionError(f"bodies differ at {found[0].path}")

        return match

    replay_module._body_matcher = body_matcher

    original_compare = replay_module.ReplayPerformer.compare

    def compare(self: Any, recorded: Any, actual: Any) -> Any:
        if recorded == actual:  # nothing to report, no mask can have hidden anything
            return []
        return original_compare(self, recorded, actual)

    replay_module.ReplayPerformer.compare = compare


def main() -> None:
    args = sys.argv[1:]
    whatif = "--whatif" in args
    path = next(a for a in args if not a.startswith("--"))
    if whatif:
        apply_whatif()
    from nano_code.testing import replay

    started = time.perf_counter()
    report = replay(path)
    wall = time.perf_counter() - started
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": report.status,
                "steps": report.steps,
                "seconds": wall,
                "report_seconds": report.seconds,
                "max_rss_kb": rss_kb,
                "error": report.error,
            }
        )
    )


if __name__ == "__main__":
    main()
