"""Issue 18, item 3b: a base URL is judged by the parser that connects (urllib3's).

`urlsplit` and urllib3 read some URLs differently; a check made with one and a connection
made with the other sent the environment's API key to a host a folder's `.env` chose. Each
known differential is either refused or read alike, and a property test holds that for
every URL that is accepted, the host judged is the host urllib3's pool connects to.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from nano_code.adapters.config import ConfigError, load_settings
from nano_code.adapters.endpoint import UnsafeURL, endpoint, is_loopback_url

KEY = "sk-from-the-environment-0123456789"

# (URL, what urllib.parse says the host is, what urllib3 connects to)
DIFFERENTIALS = [
    ("http://collector.example:80\\@127.0.0.1/v1", "127.0.0.1", "collector.example"),  # the repro
    ("http://127.1:8080\\@127.0.0.1/v1", "127.0.0.1", "127.1"),  # 127.1 is loopback to the resolver only
    ("http://collector.example\\.127.0.0.1/v1", "collector.example\\.127.0.0.1", "collector.example"),
    ("http:\\\\collector.example/v1", None, None),
    ("http://collector.example%2f@127.0.0.1/v1", "127.0.0.1", "127.0.0.1"),
    ("http://a@collector.example@127.0.0.1/v1", "127.0.0.1", "127.0.0.1"),
    ("http://collector.example@127.0.0.1/v1", "127.0.0.1", "127.0.0.1"),
    ("http://user:password@127.0.0.1/v1", "127.0.0.1", "127.0.0.1"),
    ("http://@127.0.0.1/v1", "127.0.0.1", "127.0.0.1"),
    ("http://%6cocalhost/v1", "%6cocalhost", "localhost"),  # urllib3 decodes %-escapes in hosts
    (
        "http://127.0.0.1%2ecollector.example/v1",
        "127.0.0.1%2ecollector.example",
        "127.0.0.1.collector.example",
    ),
    ("http://[::1%25eth0]/v1", "::1%25eth0", "[::1%eth0]"),
    ("http://127.0.0.1\t.collector.example/v1", "127.0.0.1.collector.example", None),  # urlsplit drops TAB
    ("http://127.0.0.1\n.collector.example/v1", "127.0.0.1.collector.example", None),
    ("http://collector.example\uff20127.0.0.1/v1", None, None),  # fullwidth @: NFKC makes it "@"
    (
        "http://127.0.0.1\u3002collector.example/v1",
        "127.0.0.1\u3002collector.example",
        None,
    ),  # ideographic dot
    ("http://127.0.0.1:8080:9090/v1", "127.0.0.1", None),
    ("http://127.0.0.1 .collector.example/v1", "127.0.0.1 .collector.example", None),
]


@pytest.mark.parametrize(("url", "split_host", "urllib3_host"), DIFFERENTIALS)
def test_every_known_parser_differential_is_refused(
    url: str, split_host: str | None, urllib3_host: str | None
) -> None:
    assert (_split_host(url), _urllib3_host(url)) == (
        split_host,
        urllib3_host,
    )  # what each parser makes of it
    with pytest.raises(UnsafeURL):
        endpoint(url)
    assert not is_loopback_url(url)


@pytest.mark.parametrize(("url", "split_host", "urllib3_host"), DIFFERENTIALS)
def test_a_dotenv_with_a_differential_url_is_a_one_line_error_without_the_key(
    tmp_path: Path, url: str, split_host: str | None, urllib3_host: str | None
) -> None:
    (tmp_path / ".env").write_text(f"INFERENCE_BASE_URL='{url}'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {"OPENROUTER_API_KEY": KEY}, {})
    message = str(caught.value)
    assert message.startswith("INFERENCE_BASE_URL must be an http:// or https:// URL")
    assert KEY not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["http://u:secret-password@api.example/v1", "https://token@api.example/v1", "http://@127.0.0.1:8/v1"],
)
def test_userinfo_is_refused_from_every_layer_and_not_shown(tmp_path: Path, url: str) -> None:
    for environ, flags in (({"INFERENCE_BASE_URL": url}, {}), ({}, {"INFERENCE_BASE_URL": url})):
        with pytest.raises(ConfigError, match="user name or password") as caught:
            load_settings(tmp_path, environ, flags)
        assert "secret-password" not in str(caught.value) and "token" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "host", "loopback"),
    [
        ("http://127.0.0.1:8080/v1", "127.0.0.1", True),
        ("HTTP://LOCALHOST:11434/v1", "localhost", True),
        ("http://[::1]:8000/v1", "::1", True),
        ("https://openrouter.ai/api/v1", "openrouter.ai", False),
        ("http://collector.example#@127.0.0.1/v1", "collector.example", False),  # a fragment, read alike
        ("http://collector.example?@127.0.0.1/v1", "collector.example", False),  # a query, read alike
        ("http://127.1:8080/v1", "127.1", False),  # loopback only by the resolver's leave: not trusted
        ("http://2130706433/v1", "2130706433", False),
    ],
)
def test_plain_urls_are_read_alike_and_judged_by_the_host_that_connects(
    url: str, host: str, loopback: bool
) -> None:
    assert endpoint(url).host == host
    assert is_loopback_url(url) is loopback


def test_a_fragment_or_query_trick_still_meets_the_key_rule(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INFERENCE_BASE_URL=http://collector.example#@127.0.0.1/v1\n")
    with pytest.raises(ConfigError, match="will not send it there") as caught:
        load_settings(tmp_path, {"OPENROUTER_API_KEY": KEY}, {})
    assert "collector.example" in str(caught.value)


def _split_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _urllib3_host(url: str) -> str | None:
    try:
        return urllib3.util.parse_url(url).host
    except urllib3.exceptions.LocationParseError:
        return None


def _pool_host(url: str) -> tuple[str, int | None]:
    with urllib3.PoolManager() as pool:
        connection = pool.connection_from_url(url + "/chat/completions")
        return connection.host, connection.port


URL_PIECES = st.lists(
    st.sampled_from(
        ["127.0.0.1", "localhost", "collector.example", "a", ":", ":80", "@", "\\", "/", "?", "#", "%", "%2e",
         "%40", "[", "]", "::1", ".", "-", "_", "\t", " ", "\uff20", "\u3002", "0x7f", "1"]
    ),
    max_size=8,
)  # fmt: skip


@given(scheme=st.sampled_from(["http://", "https://", "HTTP://"]), pieces=URL_PIECES)
def test_an_accepted_url_names_the_host_urllib3_connects_to(scheme: str, pieces: list[str]) -> None:
    url = scheme + "".join(pieces)
    try:
        judged = endpoint(url)
    except UnsafeURL:
        return
    host, port = _pool_host(url)
    assert (host.strip("[]").lower(), port) == (
        judged.host,
        judged.port or (443 if judged.scheme == "https" else 80),
    )
    assert (urlsplit(url).hostname or "") == judged.host
