"""Every request body the kernel builds is valid: against the official schema, and structurally.

The official-schema tests read ../shared/openai-schema by path and are marked
`shared`: on a clone without ../shared, tests/conftest.py leaves them out and
test_standalone_request_schema.py validates the same bodies against our own,
clearly labelled subset schema (tests/kernel/fixtures/request-subset.schema.json).
The structural check (`body_problems`: role order, tool_calls shape, arguments
are JSON-object strings, every call answered) always runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_helpers import bodies_of_a_walk, body_problems, schema_errors

from nano_code.kernel.types import KernelConfig
from nano_code.testing.strategies import kernel_configs


@given(data=st.data(), config=kernel_configs(), steps=st.integers(1, 25))
def test_request_bodies_are_structurally_valid(data: st.DataObject, config: KernelConfig, steps: int) -> None:
    for body in bodies_of_a_walk(data, config, steps):
        assert not body_problems(body), body_problems(body)


OFFICIAL_SCHEMA = pytest.mark.shared("openai-schema", "chat-completions.schema.json")


@OFFICIAL_SCHEMA
@given(data=st.data(), config=kernel_configs(), steps=st.integers(1, 25))
def test_request_bodies_validate_against_the_official_schema(
    data: st.DataObject, config: KernelConfig, steps: int
) -> None:
    for body in bodies_of_a_walk(data, config, steps):
        assert not schema_errors(body), schema_errors(body)


@OFFICIAL_SCHEMA
def test_the_schema_check_can_fail() -> None:
    assert schema_errors({"model": "m", "messages": []})
    assert schema_errors({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3})
    assert schema_errors(
        {"model": "m", "system": "seed-style", "messages": [{"role": "robot", "content": "x"}]}
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "first message is not the system"),
        (
            {
                "model": "m",
                "messages": [{"role": "system", "content": "s"}, {"role": "system", "content": "s"}],
            },
            "system message after the first",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "tool", "tool_call_id": "a", "content": "x"},
                ],
            },
            "answers no open call",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "s"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "a", "content": "x"},
                ],
            },
            "not JSON",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "s"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                        ],
                    },
                    {"role": "user", "content": "x"},
                ],
            },
            "unanswered",
        ),
    ],
)
def test_the_structural_check_can_fail(body: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in body_problems(body)), body_problems(body)


def test_regression_temperature_out_of_range_is_refused_by_the_config() -> None:
    """A temperature above 2 made a body the API (and its schema) rejects."""
    with pytest.raises(ValueError):
        KernelConfig(model="m", system_prompt="s", temperature=2.5)
    with pytest.raises(ValueError):
        KernelConfig(model="m", system_prompt="s", temperature=-0.1)
    assert KernelConfig(model="m", system_prompt="s", temperature=2.0).temperature == 2.0
