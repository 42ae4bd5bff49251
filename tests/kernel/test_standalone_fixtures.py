"""Hand-written bodies in tests/kernel/fixtures decode to what a person reading them sees.

These are the stand-alone counterpart of test_real_traffic.py: the same checks
(decode to the expected reply or failure, drive the state machine, split a
stream at every byte and at random, other SSE line endings, a stream without
Content-Type), written once in kernel_helpers.py and run here on bodies we
wrote ourselves in the shapes of QUIRKS.md, so they need no ../shared. The
expectations were written together with the fixtures, by hand. Which quirk each
fixture shows is in the table at the top of test_standalone_quirks.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kernel_helpers
import pytest
from kernel_helpers import ABSENT, FIXTURES, SAMPLES, Call, Failure, Raw, Reply

from nano_code.kernel.events import FailureKind

EXPECTED: dict[str, Reply | Failure] = {
    # ---------------------------------------------------------------- streams
    "anthropic_style_stream_index1_after_text.sse": Reply(
        calls=(Call("toolu_01QxHand7WrittenAbc", "read_file", {"path": "setup.cfg"}),),
        content="Let me open the config.",
        finish="tool_calls",
        model="claude-sonnet-4-5",
    ),
    "azure_style_stream_leading_chunk_without_choices.sse": Reply(
        content="Oslo is the capital of Norway.",
        finish="stop",
        usage=(21, 9, 30, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "dashscope_style_stream_empty_id_on_continuations.sse": Reply(
        calls=(Call("call_5b1c0d7e9a2f4c6b8e3d1a0f", "read_file", {"path": "src/util.py"}),),
        finish="tool_calls",
        usage=(412, 19, 431, 0, 0, None),
        model="qwen-plus-latest",
    ),
    "deepseek_style_stream_reasoning_content_then_call.chunks.jsonl": Reply(
        calls=(Call("call_00_Hq3v8TnP2wX6yR0aLmC4sK9j", "read_file", {"path": "uv.lock"}),),
        reasoning="I should look at the lock file.",
        finish="tool_calls",
        usage=(512, 64, 576, 448, 31, None),
        model="deepseek-reasoner",
    ),
    "gemini_style_stream_calls_without_index.sse": Reply(
        calls=(
            Call("function-call-0917", "shell", {"command": "ls docs"}),
            Call("function-call-0918", "read_file", {"path": "docs/index.md"}),
        ),
        finish="tool_calls",
        usage=(144, 31, 260, 0, 0, None),
        model="gemini-2.5-flash",
    ),
    "glm_style_stream_blank_name_on_continuation.sse": Reply(
        calls=(Call("chatcmpl-tool-4e2a91c07b", "shell", {"command": "grep -rn TODO src"}),),
        finish="tool_calls",
        usage=(230, 28, 258, 0, 0, None),
        model="glm-4.6",
    ),
    "groq_style_stream_error_event_without_done.sse": Failure(
        FailureKind.IN_BAND_ERROR, 400, ("Tool call validation failed", "tool shell")
    ),
    "groq_style_stream_single_delta_usage_only_in_x_groq.sse": Reply(
        calls=(Call("q7m2k9x4p", "shell", {"command": "pytest -q tests/unit"}),),
        finish="tool_calls",
        usage=(198, 21, 219, 0, 0, None),
        model="llama-3.3-70b-versatile",
    ),
    "llamacpp_style_stream_arguments_as_object.sse": Reply(
        calls=(Call("Vx8pL2qR7sT1uW4yZ6aB3cD5eF9gH0jK", "shell", {"command": "make lint", "timeout": 120}),),
        finish="tool_calls",
        usage=(350, 26, 376, 0, 0, None),
        model="qwen2.5-coder-7b-instruct-q4_k_m.gguf",
    ),
    "mistral_style_stream_thinking_parts_and_p_field.chunks.jsonl": Reply(
        content="144",
        reasoning="Twelve times twelve makes 144.",
        finish="stop",
        usage=(17, 32, 49, 0, 0, None),
        model="magistral-medium-2509",
    ),
    "novita_style_stream_id0_name_repeated_no_finish_reason.sse": Reply(
        calls=(Call("0", "current_time", {}),),
        finish=None,
        usage=(61, 11, 72, 0, 0, 5.23e-05),
        model="moonshotai/kimi-k2-0905",
    ),
    "novita_style_stream_whole_arguments_sent_twice.sse": Reply(
        calls=(Call("read_file:0", "read_file", {"path": "CHANGELOG.md", "offset": 40}),),
        finish="tool_calls",
        usage=(88, 24, 112, 0, 0, 8.11e-05),
        model="moonshotai/kimi-k2-0905",
    ),
    "oci_litellm_style_stream_chunk_ids_change_created_in_ms.sse": Reply(
        calls=(Call("call_oci_7H2k", "write_file", {"path": "out.txt", "content": "done"}),),
        finish="tool_calls",
        usage=(96, 18, 114, 0, 0, None),
        model="cohere.command-a-03-2025",
    ),
    "ollama_style_stream_index_always_zero_empty_finish.sse": Reply(
        calls=(
            Call("call_k3j9x2mq", "read_file", {"path": "Makefile"}),
            Call("call_p8d4w1zr", "read_file", {"path": "README.md"}),
        ),
        finish="tool_calls",
        usage=(176, 40, 216, 0, 0, None),
        model="qwen3:8b",
    ),
    "openai_style_stream_arguments_in_many_fragments.sse": Reply(
        calls=(
            Call(
                "call_T4wq9ZrLm2Xc8VbN1sKd3HyE",
                "write_file",
                {"path": "notes/todo.md", "content": "- fix the flaky test\n"},
            ),
        ),
        finish="tool_calls",
        usage=(1290, 44, 1334, 1152, 0, None),
        model="gpt-4.1-2025-04-14",
    ),
    "openai_style_stream_two_parallel_calls.sse": Reply(
        calls=(
            Call("call_Ab3dEf6hIj9kLm2nOp5qRs8t", "read_file", {"path": "pyproject.toml"}),
            Call("call_Uv4wXy7zAb0cDe3fGh6iJk9l", "shell", {"command": "git log -3"}),
        ),
        finish="tool_calls",
        usage=(301, 52, 353, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openrouter_style_stream_error_after_200_with_keepalive.sse": Failure(
        FailureKind.IN_BAND_ERROR, 502, ("Upstream connection dropped mid-response",)
    ),
    "openrouter_style_stream_reasoning_and_details_in_one_delta.sse": Reply(
        content="3 + 4 = 7",
        reasoning="Three plus four is seven.",
        finish="stop",
        usage=(38, 29, 67, 0, 12, 0.000512),
        model="anthropic/claude-haiku-4.5",
    ),
    "tgi_style_stream_without_done.sse": Reply(
        content="All tests pass.",
        finish="stop",
        usage=(40, 4, 44, 0, 0, None),
        model="HuggingFaceTB/SmolLM3-3B",
    ),
    "venice_style_stream_arguments_absent_or_null.sse": Reply(
        calls=(Call("call_vn0001", "current_time", ABSENT), Call("call_vn0002", "current_time", ABSENT)),
        finish="tool_calls",
        model="venice-uncensored",
    ),
    "vllm_style_stream_deltas_without_id.sse": Reply(
        calls=(Call("", "shell", {"command": "du -sh build"}),),
        finish="tool_calls",
        model="Qwen/Qwen3-Coder-30B-A3B-Instruct",
    ),
    "xai_style_stream_total_above_prompt_plus_completion.sse": Reply(
        calls=(Call("call_90412577", "current_time", {}),),
        reasoning="Check the clock first.",
        finish="tool_calls",
        usage=(305, 14, 497, 256, 178, None),
        model="grok-3-mini",
    ),
    # ---------------------------------------------------------------- whole bodies, HTTP 200
    "cerebras_style_content_key_absent_short_id.json": Reply(
        calls=(Call("c3e9f1a27", "read_file", {"path": "tox.ini"}),),
        finish="tool_calls",
        usage=(261, 15, 276, 0, 0, None),
        model="qwen-3-coder-480b",
    ),
    "deepseek_style_text_with_parallel_calls_cache_hit.json": Reply(
        calls=(
            Call("call_00_Pq7Rs1Tu5Vw9Xy3Za8Bc2De6", "read_file", {"path": "a.txt"}),
            Call("call_01_Fg4Hi8Jk2Lm6No0Pq3Rs7Tu1", "read_file", {"path": "b.txt"}),
        ),
        content="I'll check both files.",
        reasoning="Two files are mentioned, read them in parallel.",
        finish="tool_calls",
        usage=(640, 58, 698, 576, 12, None),
        model="deepseek-chat",
    ),
    "gemini_style_empty_id_no_index_thought_signature.json": Reply(
        calls=(Call("", "read_file", {"path": "docs/usage.md"}),),
        finish="tool_calls",
        usage=(52, 18, 131, 0, 0, None),
        model="gemini-2.5-pro",
    ),
    "hf_router_style_finish_length_cached_tokens_top_level.json": Reply(
        content="<think>\nThe user wants the tests run. First I should look at how",
        finish="length",
        usage=(24, 16, 40, 8, 0, None),
        model="Qwen/Qwen3-4B-Thinking-2507",
    ),
    "llamacpp_style_tool_call_arguments_as_object.json": Reply(
        calls=(Call("Qm4nR8sT2uV6wX0yZ3aB7cD1eF5gH9jL", "read_file", {"path": "src/app.py", "offset": 10}),),
        finish="tool_calls",
        usage=(288, 33, 321, 0, 0, None),
        model="gpt-oss-20b-mxfp4.gguf",
    ),
    "meta_style_tool_call_arguments_null.json": Reply(
        calls=(Call("call_meta_5f4e3d2c", "current_time", ABSENT),),
        finish="tool_calls",
        usage=(120, 9, 129, 0, 0, None),
        model="Llama-4-Maverick-17B-128E-Instruct-FP8",
    ),
    "mistral_style_content_empty_string_index_on_call.json": Reply(
        calls=(Call("Xk4pQ9zLm", "shell", {"command": "echo 2+2 | bc"}),),
        finish="tool_calls",
        usage=(118, 32, 150, 64, 0, None),
        model="mistral-small-latest",
    ),
    "openai_style_named_tool_choice_finish_stop_pretty.json": Reply(
        calls=(
            Call(
                "call_Zy9xWv8uTs7rQp6oNm5lKj4i",
                "write_file",
                {"path": "summary.txt", "content": "3 files changed"},
            ),
        ),
        finish="stop",
        usage=(140, 22, 162, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "openrouter_style_200_body_with_only_an_error.json": Failure(
        FailureKind.IN_BAND_ERROR,
        502,
        ("Provider returned error", "upstream request timed out", "(provider Parasail)"),
    ),
    "openrouter_style_reasoning_details_byok_cost_zero.json": Reply(
        calls=(Call("tool_shell_HandWritten7Kp2Qz9Xw", "shell", {"command": "uname -a"}),),
        reasoning="A shell command answers this.",
        finish="tool_calls",
        usage=(455, 61, 516, 0, 40, 0.0),
        model="google/gemini-2.5-flash",
    ),
    "openrouter_style_tool_call_arguments_empty_string.json": Reply(
        calls=(Call("toolu_bdrk_01HandWrittenEmptyArgs", "current_time", Raw("")),),
        finish="tool_calls",
        usage=(310, 30, 340, 0, 0, 0.000368),
        model="anthropic/claude-3.5-haiku",
    ),
    "openrouter_style_tool_call_without_arguments_key.json": Reply(
        calls=(Call("toolu_vrtx_01HandWrittenFixtureXyz", "current_time", ABSENT),),
        content="Checking the clock.",
        finish="tool_calls",
        usage=(402, 37, 439, 0, 0, None),
        model="anthropic/claude-sonnet-4.5",
    ),
    "snowflake_style_empty_finish_reason_zero_extras.json": Reply(
        calls=(Call("toolu_bdrk_01HandWrittenSnowflake", "shell", {"command": "wc -l README.md"}),),
        finish=None,
        usage=(530, 41, 571, 0, 0, None),
        model="claude-sonnet-4-5",
    ),
    "vllm_style_reasoning_field_integer_stop_reason.json": Reply(
        calls=(Call("chatcmpl-tool-5e0c2b9a7d1f4e38", "shell", {"command": "ls -la"}),),
        reasoning="Listing the directory comes first.",
        finish="tool_calls",
        usage=(199, 41, 240, 0, 14, None),
        model="zai-org/GLM-4.6",
    ),
    # ---------------------------------------------------------------- error bodies
    "azure_style_error_404_string_code_mixed_spacing.json": Failure(
        FailureKind.BAD_REQUEST, 404, ("The requested deployment could not be found",)
    ),
    "azure_style_error_429_minus_one_ratelimit_headers.json": Failure(
        FailureKind.RATE_LIMIT, 429, ("exceeded the token rate limit",), retry_after=None
    ),
    "dashscope_style_error_400_replayed_arguments_not_json.json": Failure(
        FailureKind.BAD_REQUEST, 400, ('"function.arguments" field', "must be in JSON format")
    ),
    "deepseek_style_error_400_context_overflow_with_generic_code.json": Failure(
        FailureKind.CONTEXT_OVERFLOW, 400, ("maximum context length is 131072 tokens",)
    ),
    "groq_style_error_400_required_tool_not_called.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Tool choice is required",)
    ),
    "groq_style_error_400_tool_use_failed.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Failed to call a function",)
    ),
    "mistral_style_error_400_flat_tool_call_id_rejected.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Tool call id was call_Zy9xWv8uTs7rQp6oNm5lKj4i", "with a length of 9")
    ),
    "openai_style_error_400_code_null.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("'tool_choice' is only allowed when 'tools' are specified",)
    ),
    "openai_style_error_400_context_length_exceeded.json": Failure(
        FailureKind.CONTEXT_OVERFLOW, 400, ("maximum context length is 128000 tokens",)
    ),
    "openai_style_error_429_retry_after_ms_header.json": Failure(
        FailureKind.RATE_LIMIT, 429, ("Rate limit reached for requests",), retry_after=0.85
    ),
    "openai_style_error_429_wait_given_in_the_message.json": Failure(
        FailureKind.RATE_LIMIT, 429, ("Rate limit reached for gpt-4.1",), retry_after=2.152
    ),
    "openai_style_error_500_server_error_code_null.json": Failure(
        FailureKind.SERVER_ERROR, 500, ("The server had an error processing your request",)
    ),
    "openai_style_error_503_overloaded.json": Failure(
        FailureKind.SERVER_ERROR, 503, ("currently overloaded",)
    ),
    "openrouter_style_error_400_raw_is_a_json_string.json": Failure(
        FailureKind.BAD_REQUEST,
        400,
        ("Provider returned error", "Invalid schema for function 'read_file'", "(provider Azure)"),
    ),
    "openrouter_style_error_401_without_type.json": Failure(FailureKind.AUTH, 401, ("User not found.",)),
    "openrouter_style_error_429_reset_only_in_metadata_headers.json": Failure(
        FailureKind.RATE_LIMIT, 429, ("Rate limit exceeded: free-models-per-min",), retry_after=None
    ),
    "vllm_style_error_400_flat_object_context_overflow.json": Failure(
        FailureKind.CONTEXT_OVERFLOW, 400, ("maximum context length is 32768 tokens",)
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    on_disk = kernel_helpers.every_file_has_an_expectation(FIXTURES, EXPECTED)
    assert len(on_disk) >= 50, sorted(on_disk)


def test_fixtures_are_hand_written_not_recordings() -> None:
    """No fixture may be a copy of a recorded body: they are ours (README.md says so)."""
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert "written by hand" in readme and "None is a recording" in readme
    for name in EXPECTED:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        assert "_style_" in name, f"{name}: fixture names say whose *style* they imitate"
        assert text.strip(), name


VOCABULARY = frozenset(
    {
        # object types, roles, part types, error codes and types, reasoning formats
        "chat.completion",
        "chat.completion.chunk",
        "assistant",
        "function",
        "thinking",
        "analysis",
        "tool_calls",
        "messages",
        "BadRequestError",
        "context_length_exceeded",
        "invalid_parameter_error",
        "invalid_request_error",
        "rate_limit_exceeded",
        "server_error",
        "tool_use_failed",
        "reasoning.encrypted",
        "reasoning.text",
        "anthropic-claude-v1",
        "fp_ollama",
        "abcdefghijklm",  # Mistral's `p` padding is a prefix of the alphabet
        "Provider returned error",  # OpenRouter's fixed wording
        # public model, provider and tool names
        "Google AI Studio",
        "anthropic/claude-sonnet-4.5",
        "deepseek-reasoner",
        "google/gemini-2.5-flash",
        "gpt-4.1-2025-04-14",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini-2024-07-18",
        "grok-3-mini",
        "llama-3.3-70b-versatile",
        "mistral-small-latest",
        "openai/gpt-oss-120b",
        "qwen-3-coder-480b",
        "read_file",
    }
)
"""Strings a fixture may share with a recording: the protocol's own words and public names."""


def _string_values(path: Path) -> set[str]:
    """Every string value (8+ characters) of the JSON payloads in a body, stream or chunk file."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) >= 8:
            found.add(value)

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        walk(json.loads(text))
    except ValueError:
        for line in text.splitlines():
            line = line.removeprefix("data:").strip()
            if line.startswith("{"):
                try:
                    walk(json.loads(line))
                except ValueError:
                    continue
    return found


@pytest.mark.shared("real-traffic", "samples")
def test_no_fixture_copies_a_recorded_value() -> None:
    """The recordings stay in ../shared: no id, text, message or number string is taken from them."""
    recorded: set[str] = set()
    for path in SAMPLES.iterdir():
        if path.is_file():
            recorded |= _string_values(path)
    assert len(recorded) > 200
    for name in EXPECTED:
        copied = (_string_values(FIXTURES / name) & recorded) - VOCABULARY
        assert not copied, f"{name} repeats recorded values {sorted(copied)}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kernel_helpers.parametrize_response_files(metafunc, FIXTURES, EXPECTED)


# The checks every response file gets (kernel_helpers.py), once per fixture they apply to.
test_fixture_decodes_to_what_it_says = kernel_helpers.decodes_to_what_it_says
test_fixture_drives_the_machine = kernel_helpers.drives_the_machine
test_fixture_stream_split_in_two_at_every_byte = kernel_helpers.stream_split_in_two_at_every_byte
test_fixture_stream_split_anywhere = kernel_helpers.stream_split_anywhere
test_fixture_sse_with_other_line_endings = kernel_helpers.sse_with_other_line_endings
test_fixture_stream_without_content_type_is_sniffed = kernel_helpers.stream_without_content_type_is_sniffed
