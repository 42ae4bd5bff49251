"""Settings from `.env`, the environment and flags (later wins), checked and typed.

A `.env` sets only the connection (`DOTENV_SETTINGS`); a value that is empty or
blank counts as not set in its layer; values are trimmed. The API key appears
in no repr and no error message (`<redacted>` instead).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeGuard

import attrs

from nano_code.adapters.dotenv_file import parse_dotenv
from nano_code.adapters.endpoint import Endpoint, UnsafeURL, endpoint, is_loopback_host
from nano_code.adapters.regular_files import NotARegularFile, read_regular
from nano_code.adapters.secrets import REDACTED
from nano_code.kernel.types import PromptCache

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "anthropic/claude-sonnet-4.5"

_API_KEY = "OPENROUTER_API_KEY"
_BASE_URL = "INFERENCE_BASE_URL"
_HOME = "NANO_CODE_HOME"

#: (variable, default as shown, comment) for every setting: `.env.example` and `--help` come from it.
SETTINGS_DOC: tuple[tuple[str, str, str], ...] = (
    (_API_KEY, "", "API key sent as a Bearer token; leave unset for local servers that need none"),
    (_BASE_URL, DEFAULT_BASE_URL, "OpenAI-compatible endpoint; /chat/completions is appended"),
    ("MODEL_NAME", DEFAULT_MODEL, "model name sent with every request"),
    ("NANO_CODE_MAX_STEPS", "50", "most model calls in one turn before the agent stops"),
    ("NANO_CODE_STREAM", "true", "stream replies as they are generated (true/false)"),
    ("NANO_CODE_CONNECT_TIMEOUT", "10", "seconds to wait for a connection to the endpoint"),
    ("NANO_CODE_READ_TIMEOUT", "300", "seconds to wait for more data from the endpoint"),
    ("NANO_CODE_CALL_TIMEOUT", "900", "seconds one model call may take in all, however the server trickles"),
    (
        "NANO_CODE_MAX_RESPONSE_BYTES",
        "33554432",
        "most bytes of one reply (after decompression) before it is abandoned (32 MiB)",
    ),
    (
        "NANO_CODE_PROMPT_CACHE",
        "auto",
        "prompt-cache markers (flag --prompt-cache): auto for the models that want them (Claude; Gemini "
        "on OpenRouter; GPT-5.6 and later on OpenAI), on for every model, off for none",
    ),
    ("NANO_CODE_SHELL_TIMEOUT", "120", "seconds before a shell command is killed"),
    (
        "NANO_CODE_CONTEXT_TOKENS",
        "128000",
        "the model's context window in tokens: the conversation is compacted (older part summarised) "
        "near it; a smaller window a server's error states is learned",
    ),
    (
        "NANO_CODE_YES",
        "false",
        "run every tool call without asking for approval (flag --yes); "
        "the environment or the flag only, never .env",
    ),
    (
        "NANO_CODE_SANDBOX",
        "",
        "workspace-write (the default where bwrap works), read-only or off (flag --sandbox); "
        "the environment or the flag only, never .env",
    ),
    (
        "NANO_CODE_SANDBOX_NETWORK",
        "false",
        "let sandboxed commands use the network (flag --sandbox-network); the environment or the flag only",
    ),
    (
        "NANO_CODE_SNAPSHOT_MAX_BYTES",
        "20971520",
        "most bytes of workspace files a recorded session keeps a snapshot of, for forks (20 MiB; 0: none)",
    ),
    (
        _HOME,
        "~/.local/share/nano-code",
        "where sessions are stored (default $XDG_DATA_HOME/nano-code when XDG_DATA_HOME is set)",
    ),
    ("NANO_CODE_DEBUG", "false", "print debugging details (true/false)"),
)

_DEFAULTS = {name: default for name, default, _ in SETTINGS_DOC}
SANDBOX_MODES = ("workspace-write", "read-only", "off")
PROMPT_CACHE_MODES = tuple(mode.value for mode in PromptCache)
_NAMES = frozenset(_DEFAULTS)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_MAX_SHOWN = 80


class ConfigError(Exception):
    """A setting is invalid or `.env` unreadable: one line naming the variable, never the key."""


@attrs.frozen
class Settings:
    """Everything nano-code reads from its configuration. The API key is never shown."""

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    max_steps: int = 50
    stream: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    call_timeout: float = 900.0
    max_response_bytes: int = 32 * 1024 * 1024
    shell_timeout: float = 120.0
    auto_approve: bool = False
    sandbox: str | None = None  # one of SANDBOX_MODES as asked for; None: the default (adapters/sandbox.py)
    sandbox_network: bool = False
    snapshot_max_bytes: int = 20 * 1024 * 1024
    context_tokens: int = 128_000
    prompt_cache: str = "auto"  # one of PROMPT_CACHE_MODES
    home: Path = attrs.field(factory=lambda: _default_home(os.environ))
    debug: bool = False
    warnings: tuple[str, ...] = attrs.field(default=(), eq=False)  # notices on where settings came from

    @property
    def chat_completions_url(self) -> str:
        return self.base_url + "/chat/completions"

    def public_dict(self) -> dict[str, object]:
        """Every setting except the key itself (only whether one is set): safe to record or log."""
        fields = {spec.name: getattr(self, spec.name) for spec in attrs.fields(type(self))}
        del fields["api_key"]
        fields["home"] = str(self.home)
        fields["has_api_key"] = self.api_key is not None
        return fields


def render_env_example() -> str:
    """The text of a ``.env.example``: every setting commented out, with its default."""
    lines = [
        "# nano-code settings, each with its default.",
        "# A .env in the folder nano-code starts in may set only the connection (OPENROUTER_API_KEY,",
        "# INFERENCE_BASE_URL, MODEL_NAME): copy those to a .env and uncomment what you need.",
        "# Set the others in the environment or with a flag. Precedence: .env < environment < flags.",
    ]
    for name, default, comment in SETTINGS_DOC:
        lines += ["", f"# {comment}", f"# {name}={default}"]
    return "\n".join(lines) + "\n"


def _is_set(value: str | None) -> TypeGuard[str]:
    return value is not None and value.strip() != ""


def _expand_tilde(value: str, environ: Mapping[str, str]) -> Path:
    if value == "~" or value.startswith("~/"):
        home = environ.get("HOME") or str(Path.home())
        return Path(home + value[1:])
    return Path(value).expanduser()


def _default_home(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative paths are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "nano-code"
    return _expand_tilde("~/.local/share/nano-code", environ)


class _Checker:
    """Turns raw strings into typed values, raising ConfigError that hides the key."""

    def __init__(self, api_key: str | None, raw: Mapping[str, str]) -> None:
        self.api_key = api_key
        self.raw = raw

    def text(self, name: str) -> str:
        return self.raw.get(name, _DEFAULTS[name])

    def error(self, message: str) -> ConfigError:
        key = self.api_key
        if key and key in message:
            message = message.replace(key, REDACTED)
        return ConfigError(message)

    def bad(self, name: str, expectation: str, value: str) -> ConfigError:
        shown = value.replace(self.api_key, REDACTED) if self.api_key else value
        text = repr(shown)
        if len(text) > _MAX_SHOWN:
            text = text[: _MAX_SHOWN - 4] + "...'"
        return self.error(f"{name} must be {expectation}, got {text}")

    def boolean(self, name: str) -> bool:
        value = self.text(name)
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise self.bad(name, "one of 1/0/true/false/yes/no/on/off", value)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name)
        if value.lower() not in allowed:
            raise self.bad(name, f"one of {'/'.join(allowed)}", value)
        return value.lower()

    def at_least(self, name: str, minimum: int, what: str = "a whole number") -> int:
        value = self.text(name)
        if _WHOLE_NUMBER.fullmatch(value) is None or int(value) < minimum:
            raise self.bad(name, f"{what} >= {minimum}", value)
        return int(value)

    def seconds(self, name: str) -> float:
        value = self.text(name)
        if _DECIMAL.fullmatch(value) is None or not 0 < float(value) < math.inf:
            raise self.bad(name, "a number of seconds > 0", value)
        return float(value)

    def url(self, name: str, value: str) -> Endpoint:
        try:
            return endpoint(value.rstrip("/"))
        except UnsafeURL as unsafe:
            if not unsafe.show_value:
                raise self.error(f"{name} must be {unsafe.expectation}") from None
            raise self.bad(name, unsafe.expectation, value) from None


DOTENV_MAX_BYTES = 1 << 20
DOTENV_SETTINGS = (_API_KEY, _BASE_URL, "MODEL_NAME")
"""What a `.env` may set: the connection. A `.env` comes with whatever folder nano-code starts
in (a cloned repository, say), so it decides no permissions, limits or recording place."""


def _read_dotenv(cwd: Path, environ: Mapping[str, str]) -> dict[str, str]:
    path = cwd / ".env"
    try:
        data = read_regular(path, DOTENV_MAX_BYTES)
    except FileNotFoundError:
        return {}
    except NotARegularFile:
        raise ConfigError(f"cannot read {path}: not a regular file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > DOTENV_MAX_BYTES:
        raise ConfigError(f"cannot read {path}: larger than {DOTENV_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {path}: not UTF-8 text (byte {exc.start})") from None
    # ${NAME} expands from the file's own lines only: from the environment, a cloned repository's
    # .env could put GITHUB_TOKEN into the model name or base URL, sent to the server it names.
    return parse_dotenv(text, {})


_SHOWN_NAMES = 8


def _refused_in_dotenv(values: Mapping[str, str], path: Path) -> str | None:
    """One line naming the settings (and other NANO_CODE_* names) a `.env` sets but may not."""
    names = sorted(
        name
        for name, value in values.items()
        if name not in DOTENV_SETTINGS
        and (name in _NAMES or name.startswith("NANO_CODE_"))
        and _is_set(value)
    )
    if not names:
        return None
    shown = ", ".join(names[:_SHOWN_NAMES])
    if len(names) > _SHOWN_NAMES:
        shown += f" and {len(names) - _SHOWN_NAMES} more"
    return (
        f"ignoring {shown} in {path}: a folder's .env sets only the connection "
        f"({', '.join(DOTENV_SETTINGS)}); set the rest in the environment or with a flag"
    )


def _inside(path: Path, folder: Path) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def load_settings(
    cwd: Path,
    environ: Mapping[str, str],
    overrides: Mapping[str, str | None],
    *,
    records_to_home: bool = False,
) -> Settings:
    """Settings from `cwd/.env`, then `environ`, then `overrides` (flags by variable name,
    None: not given); later wins. ConfigError for an unreadable `.env`, an invalid value,
    or (`records_to_home`) a default `home` inside `cwd`, where commands could reach it."""
    unknown = sorted(set(overrides) - _NAMES)
    if unknown:
        raise ValueError(f"unknown setting override(s): {', '.join(unknown)}")
    dotenv_path = cwd / ".env"
    everything_in_dotenv = _read_dotenv(cwd, environ)
    refused = _refused_in_dotenv(everything_in_dotenv, dotenv_path)
    warnings = [refused] if refused is not None else []
    dotenv = {name: value for name, value in everything_in_dotenv.items() if name in DOTENV_SETTINGS}
    layers: list[Mapping[str, str | None]] = [dotenv, environ, overrides]
    raw = {name: value.strip() for layer in layers for name in _NAMES if _is_set(value := layer.get(name))}

    api_key = raw.get(_API_KEY)
    check = _Checker(api_key, raw)
    if api_key is not None and not all("!" <= char <= "~" for char in api_key):
        raise check.error(f"{_API_KEY} must be printable ASCII without spaces (value not shown)")

    def from_dotenv(name: str) -> bool:
        return _is_set(dotenv.get(name)) and not any(_is_set(layer.get(name)) for layer in layers[1:])

    base_url = check.text(_BASE_URL).rstrip("/")
    server = check.url(_BASE_URL, check.text(_BASE_URL))
    if from_dotenv(_BASE_URL):
        if api_key is not None and not from_dotenv(_API_KEY) and not is_loopback_host(server.host):
            raise check.error(
                f"{dotenv_path} points {_BASE_URL} at {server.where}, but the API key "
                "comes from your environment: nano-code will not send it there. Put the key in that "
                f".env too, or set {_BASE_URL} in the environment or with --base-url"
            )
        what = "requests and the API key go" if api_key is not None else "requests go"
        warnings.append(f"{_BASE_URL} comes from {dotenv_path}: {what} to {server.where}")

    home_value = raw.get(_HOME)
    if home_value is None:
        home = _default_home(environ)
        if records_to_home and _inside(home, cwd):
            raise ConfigError(
                f"the default sessions folder {home} is inside {cwd}, where the commands nano-code runs "
                f"could rewrite or publish the recordings: set {_HOME} to a folder outside it, or pass --no-record"
            )
    else:
        home = _expand_tilde(home_value, environ)
        if not home.is_absolute():
            home = cwd / home

    return Settings(
        api_key=api_key,
        base_url=base_url,
        model=check.text("MODEL_NAME"),
        max_steps=check.at_least("NANO_CODE_MAX_STEPS", 1),
        stream=check.boolean("NANO_CODE_STREAM"),
        connect_timeout=check.seconds("NANO_CODE_CONNECT_TIMEOUT"),
        read_timeout=check.seconds("NANO_CODE_READ_TIMEOUT"),
        call_timeout=check.seconds("NANO_CODE_CALL_TIMEOUT"),
        max_response_bytes=check.at_least("NANO_CODE_MAX_RESPONSE_BYTES", 1),
        shell_timeout=check.seconds("NANO_CODE_SHELL_TIMEOUT"),
        auto_approve=check.boolean("NANO_CODE_YES"),
        sandbox=check.choice("NANO_CODE_SANDBOX", SANDBOX_MODES) if "NANO_CODE_SANDBOX" in raw else None,
        sandbox_network=check.boolean("NANO_CODE_SANDBOX_NETWORK"),
        snapshot_max_bytes=check.at_least("NANO_CODE_SNAPSHOT_MAX_BYTES", 0, "a whole number of bytes"),
        context_tokens=check.at_least("NANO_CODE_CONTEXT_TOKENS", 1024),
        prompt_cache=check.choice("NANO_CODE_PROMPT_CACHE", PROMPT_CACHE_MODES),
        home=home,
        debug=check.boolean("NANO_CODE_DEBUG"),
        warnings=tuple(warnings),
    )
