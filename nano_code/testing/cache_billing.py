"""A prompt cache that bills the way Anthropic's does, for fake servers and benchmarks: what a
session would cost on Claude, offline.

The model, simple enough to check by hand:
- a prompt is its tools, then its messages; each message ends a block, and a block's tokens
  are its compact JSON's length / 4 (rounded up), cache markers left out;
- a prefix is known by the hash of its blocks, markers left out (a marker says where to
  write, not what is written);
- a request reads the longest cached prefix that ends at most `lookback` blocks before one of
  its markers (none without markers), and writes the prefix ending at each marker;
- prefixes shorter than `minimum_tokens` are never cached;
- reads cost 0.1x the input price, writes 1.25x, the rest 1x; the uncached bill is every prompt
  token at 1x, what the same requests cost without a cache.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["CacheBilling", "unmarked_message"]

MARKERS = ("cache_control", "prompt_cache_breakpoint")


def unmarked_message(message: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The message without markers (one-part content back to its string), and whether it had one."""
    content = message.get("content")
    if not isinstance(content, list) or not any(
        isinstance(p, Mapping) and set(p) & set(MARKERS) for p in content
    ):
        return dict(message), False
    parts = [{k: v for k, v in part.items() if k not in MARKERS} for part in content]
    plain = parts[0]["text"] if len(parts) == 1 and set(parts[0]) == {"type", "text"} else parts
    return {**message, "content": plain}, True


def _tokens(value: Any) -> int:
    return math.ceil(len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) / 4)


@attrs.define
class CacheBilling:
    """One server's cache and the bill of every request it priced."""

    lookback: int = 20
    minimum_tokens: int = 1024
    input_price: float = 3e-6
    output_price: float = 15e-6
    read_factor: float = 0.1
    write_factor: float = 1.25
    cached: set[str] = attrs.field(factory=set)
    prompt_tokens: int = 0
    read_tokens: int = 0
    written_tokens: int = 0
    bill: float = 0.0
    uncached_bill: float = 0.0

    def usage(self, body: Mapping[str, Any], completion_tokens: int = 20) -> dict[str, Any]:
        """Price one request (updating the cache and the totals); its usage as OpenRouter reports it."""
        messages = [unmarked_message(message) for message in body.get("messages", [])]
        blocks = [body.get("tools", []), *(plain for plain, _ in messages)]
        marks = [number for number, (_, has_marker) in enumerate(messages, 1) if has_marker]
        ends, keys, total, digest = [], [], 0, hashlib.sha256()
        for block in blocks:
            total += _tokens(block)
            digest.update(json.dumps(block, sort_keys=True).encode())
            ends.append(total)
            keys.append(digest.hexdigest())
        reachable = {i for mark in marks for i in range(max(0, mark - self.lookback), mark + 1)}
        hits = [i for i in reachable if keys[i] in self.cached]
        read = ends[max(hits)] if hits else 0
        for mark in marks:
            if ends[mark] >= self.minimum_tokens:
                self.cached.add(keys[mark])
        written = max(0, ends[marks[-1]] - read) if marks and ends[marks[-1]] >= self.minimum_tokens else 0
        price = self.input_price
        cost = (total - read - written) * price + read * price * self.read_factor
        cost += written * price * self.write_factor + completion_tokens * self.output_price
        self.prompt_tokens += total
        self.read_tokens += read
        self.written_tokens += written
        self.bill += cost
        self.uncached_bill += total * price + completion_tokens * self.output_price
        return {
            "prompt_tokens": total,
            "completion_tokens": completion_tokens,
            "total_tokens": total + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
            "cost": round(cost, 10),
        }

    @property
    def read_share(self) -> float:
        """The share of all prompt tokens read from the cache."""
        return self.read_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def bill_ratio(self) -> float:
        """The bill against the uncached bill."""
        return self.bill / self.uncached_bill if self.uncached_bill else 1.0
