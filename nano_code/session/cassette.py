"""vcrpy serving a parsed recording offline: nothing is ever fetched live."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nano_code.adapters.session_file import SessionFile, SessionFileError
from nano_code.kernel.jsondiff import Mask, differences


def json_body(body: Any) -> Any:
    """A request body parsed as JSON where it is JSON, else as it is."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return body


def _body_matcher(masks: tuple[Mask, ...]) -> Callable[[Any, Any], None]:
    def match(r1: Any, r2: Any) -> None:
        if r1.body == r2.body:
            return  # byte-identical: canonical JSON is equal too
        found, _ = differences(json_body(r1.body), json_body(r2.body), masks, limit=1)
        if found:
            raise AssertionError(f"bodies differ at {found[0].path}")

    return match


@contextlib.contextmanager
def offline_cassette(
    path: Path,
    masks: tuple[Mask, ...],
    session: SessionFile,
    expected: Callable[[], tuple[int, str | None]],
    match_body: bool = True,
) -> Iterator[Any]:
    """vcrpy with no recording, canonical-JSON body matching (`masks` aside), no repeats, host
    and port not matched (a resumed session may have moved port). Replay is strictly ordered, so
    vcrpy is pointed at the one interaction that may answer (`expected`: its index and body)."""
    import vcr  # noqa: F401 - heavy (~100 ms): only replay pays for it
    from vcr.cassette import Cassette
    from vcr.matchers import method, query, requests_match
    from vcr.matchers import path as url_path
    from vcr.record_mode import RecordMode

    # a rebless accepts changed requests: the performer compares and reports bodies
    match_on = (method, url_path, query, *((_body_matcher(masks),) if match_body else ()))
    # vcrpy never reads the path but builds names from it: give it a decodable spelling
    shown_path = os.fsencode(path).decode("utf-8", "replace")
    # Cassette.use, not a VCR config: a config deep-copies every request in its hooks.
    with Cassette.use(
        path=shown_path,
        persister=_LoadedPersister(session),
        record_mode=RecordMode.NONE,
        match_on=match_on,
        allow_playback_repeats=False,
    ) as cassette:
        holding: list[Any] = []

        def only_the_expected_interaction(request: Any) -> Iterator[tuple[int, Any]]:
            index, body = expected()
            if 0 <= index < len(cassette.data):
                stored_request, response = cassette.data[index]
                if not holding or holding[-1] is not stored_request:
                    for earlier in holding:
                        earlier.body = None
                    holding[:] = [stored_request]
                    stored_request.body = body
                if requests_match(request, stored_request, cassette._match_on):
                    yield index, response

        cassette._responses = only_the_expected_interaction
        yield cassette


class _RecordedResponse(dict[str, Any]):
    """A recorded response as vcrpy plays it: never changed, so never deep-copied."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _RecordedResponse:
        return self


class _LoadedPersister:
    """Hands vcrpy the session already parsed (the file is read once); requests go without
    their bodies (see `offline_cassette`)."""

    def __init__(self, session: SessionFile) -> None:
        self._session = session

    def load_cassette(self, cassette_path: str, serializer: Any) -> tuple[list[Any], list[Any]]:
        from vcr.request import Request

        requests: list[Any] = []
        responses: list[Any] = []
        for record in self._session.records:
            if record.kind != "interaction":
                continue
            request, reply = record.data["request"], record.data["response"]
            requests.append(Request(request["method"], request["uri"], None, request["headers"]))
            text = reply["body"]["string"]
            body = {"string": text.encode("utf-8") if isinstance(text, str) else text}
            responses.append(_RecordedResponse(status=reply["status"], headers=reply["headers"], body=body))
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        raise SessionFileError("replay never writes through vcrpy")
