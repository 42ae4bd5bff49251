"""The API key's one module: every place that shows or writes text takes it through a
`Redactor`, which finds the key in every spelling JSON allows and hides it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie"})
REDACTED = "<redacted>"
MIN_SCRUBBED_KEY = 6  # shorter (or all-digit) keys occur by chance in text: only dropped from headers


def scrubbable(secret: str | None) -> bool:
    return bool(secret) and len(secret or "") >= MIN_SCRUBBED_KEY and not (secret or "").isdigit()


class SecretLeakError(Exception):
    """A line about to be written still contains the API key; nothing was written."""


def _char_forms(char: str) -> str:
    """A pattern for `char` in JSON text at any depth of string escaping: itself, a `\\uXXXX`
    or short escape, each after any run of backslashes."""
    forms = []
    code = ord(char)
    if code <= 0xFFFF:
        hex_digits = "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{code:04x}")
        forms.append(r"\\+u" + hex_digits)
    if char in '/"':
        forms.append(r"\\+" + re.escape(char))
    # A backslash is a whole run of them: matching one would leave half an escape, breaking the JSON.
    forms.append(r"\\+" if char == "\\" else re.escape(char))
    return "(?:" + "|".join(forms) + ")"


class Redactor:
    """Finds the API key in text, in every form JSON allows (literal, `\\u` escapes in
    any mix and case, `\\/`, and the same again inside a JSON string), and hides it."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret if scrubbable(secret) else None
        self._compiled: re.Pattern[str] | None = None
        self._plain_forms: tuple[str, ...] = ()
        if self.secret:
            forms = [self.secret]
            for _ in range(3):  # the key inside a JSON string, inside a JSON string, ...
                forms.append(json.dumps(forms[-1])[1:-1])
            self._plain_forms = tuple(sorted(set(forms), key=len, reverse=True))

    @property
    def _pattern(self) -> re.Pattern[str]:
        """The regex for every spelling, compiled when first needed (the usual text never needs it)."""
        if self._compiled is None:
            self._compiled = re.compile("".join(_char_forms(char) for char in self.secret or ""))
        return self._compiled

    def _escapes_possible(self, text: str) -> bool:
        """Whether `text` may spell a key character as an escape; if not, plain `str`
        searches suffice (searching "u00" is far quicker than for a backslash)."""
        secret = self.secret or ""
        if "u00" in text if secret.isascii() else "\\u" in text:
            return True
        return "/" in secret and "\\/" in text

    def scrub(self, text: str) -> str:
        if not self.secret:
            return text
        if self._escapes_possible(text):
            return self._pattern.sub(REDACTED, text)
        for form in self._plain_forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def check(self, text: str) -> None:
        if self.scrub(text) != text:
            raise SecretLeakError("refusing to write the session: the API key would appear in it")

    @property
    def holdback(self) -> int:
        """Characters of streamed text to hold back so a key split across pieces is still caught."""
        return len(self.secret) - 1 if self.secret else 0

    def scrub_value(self, value: Any) -> Any:
        if not self.secret:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub(str(k)): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_value(v) for v in value]
        return value
