"""Every recorded real-server body decodes to what a person reading it sees.

The expectations below were written by reading each file in
shared/real-traffic/samples/ (not by snapshotting the decoder). A new sample
without an entry fails `test_every_sample_has_an_expectation`.

The checks are the ones every response file gets, written once in
kernel_helpers.py; test_standalone_fixtures.py runs them over the hand-written
bodies in tests/kernel/fixtures. Every test here reads ../shared by path and is
marked `shared`: on a clone without ../shared, tests/conftest.py leaves them
out (one line in the session header says so) and the fixtures stand in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kernel_helpers
import pytest
from kernel_helpers import ABSENT, SAMPLES, Call, Failure, Reply

from nano_code.kernel.events import FailureKind

pytestmark = pytest.mark.shared("real-traffic", "samples")


def weather(call_id: str, **arguments: Any) -> Call:
    return Call(call_id, "weather", arguments)


EXPECTED: dict[str, Reply | Failure] = {
    "alibaba_qwen3max_stream_tool_call_empty_id_continuations.chunks.jsonl": Reply(
        calls=(weather("call_eee11723464a4b9eb8cee71d", location="San Francisco"),),
        finish="tool_calls",
        usage=(295, 22, 317, 0, 0, None),
        model="qwen3-max",
    ),
    "alibaba_qwen_error_400_invalid_function_arguments.json": Failure(
        FailureKind.BAD_REQUEST, 400, ('"function.arguments" parameter', "must be in JSON format")
    ),
    "anthropic_openai_compat_stream_tool_call_index1_after_text.sse": Reply(
        calls=(Call("toolu_sanitized", "read_file", {"path": "a.txt"}),),
        content="Reading it.",
        finish="tool_calls",
        model="claude-haiku-4-5-20251001",
    ),
    "azure_openai_error_404_resource_not_found.json": Failure(
        FailureKind.BAD_REQUEST, 404, ("Resource not found",)
    ),
    "azure_openai_model_router_stream_content_filter.chunks.jsonl": Reply(
        content="Capital of Denmark.",
        finish="stop",
        usage=(15, 78, 93, 0, 64, None),
        model="gpt-5-nano-2025-08-07",
    ),
    "azure_openai_stream_tool_call_content_filter.sse": Reply(
        calls=(Call("call_A6XpaIHt5uNwiDqVxyvKoXMa", "get_current_temperature", {"city": "San Francisco"}),),
        finish="tool_calls",
        usage=(66, 17, 83, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "cerebras_nonstream_tool_call.json": Reply(
        calls=(Call("b8847f144", "final_result", {"city": "Paris", "country": "France"}),),
        finish="tool_calls",
        usage=(364, 33, 397, 0, 0, None),
        model="qwen-3-coder-480b",
    ),
    "crusoe_vllm_style_nonstream_tool_call_reasoning.json": Reply(
        calls=(Call("chatcmpl-tool-bbb91941bf76335c", "get_weather", {"city": "Paris"}),),
        finish="tool_calls",
        reasoning=None,
        reasoning_prefix="The user wants to know the weather in Paris. I'll call the get_weather function",
        usage=(167, 37, 204, 0, 25, None),
        model="zai/GLM-5.2",
    ),
    "deepseek_nonstream_parallel_tool_calls_reasoning_content.json": Reply(
        calls=(
            Call("call_00_6edlnw3Z1MgeMfey687g8451", "get_player_name", {}),
            Call("call_01_km02sac7sHxNDPATKLZy7705", "roll_dice", {}),
        ),
        content="Let me get your name and roll the die!",
        finish="tool_calls",
        reasoning=None,
        reasoning_prefix="Great, now I have access to the dice roll tool.",
        usage=(875, 79, 954, 0, 26, None),
        model="deepseek-v4-flash",
    ),
    "deepseek_reasoner_nonstream_tool_call_reasoning_content.json": Reply(
        calls=(weather("call_00_9V0vrf86Pc9aelHCJMZqnJBo", location="San Francisco"),),
        finish="tool_calls",
        reasoning=None,
        reasoning_prefix="The user is asking for the weather in San Francisco. I have a weather tool",
        usage=(339, 92, 431, 320, 48, None),
        model="deepseek-reasoner",
    ),
    "deepseek_reasoner_stream_reasoning_content_then_tool_call.chunks.jsonl": Reply(
        calls=(weather("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF", location="San Francisco"),),
        finish="tool_calls",
        reasoning="The user is asking for the weather in San Francisco. I need to use the weather tool to get"
        " this information. Let me invoke the weather tool with the location parameter set to"
        ' "San Francisco".',
        usage=(339, 83, 422, 320, 39, None),
        model="deepseek-reasoner",
    ),
    "gemini_openai_compat_nonstream_tool_call_empty_id.json": Reply(
        calls=(Call("", "get_current_time", {}),),
        finish="tool_calls",
        usage=(35, 12, 109, 0, 0, None),
        model="gemini-2.5-pro-preview-05-06",
    ),
    "groq_error_400_tool_choice_required_not_called.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Tool choice is required, but model did not call a tool",)
    ),
    "groq_error_400_tool_use_failed.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Tool call validation failed", "get_something_by_name")
    ),
    "groq_error_404_model_not_found.json": Failure(
        FailureKind.BAD_REQUEST, 404, ("The model `non-existent` does not exist",)
    ),
    "groq_llama33_stream_tool_call_single_delta.chunks.jsonl": Reply(
        calls=(weather("tk85n1k4m"),),
        finish="tool_calls",
        usage=(210, 15, 225, 0, 0, None),
        model="llama-3.3-70b-versatile",
    ),
    "groq_nonstream_tool_call_gpt_oss_reasoning.json": Reply(
        calls=(Call("fc_311ba17b-89f9-48d3-8fd9-7e74a1264855", "get_something_by_name", {"name": "test"}),),
        finish="tool_calls",
        reasoning='We need to call with correct param: name field. Use some name, e.g., "test".',
        usage=(301, 52, 353, 0, 22, None),
        model="openai/gpt-oss-120b",
    ),
    "groq_stream_midstream_error_event_tool_use_failed.sse": Failure(
        FailureKind.IN_BAND_ERROR, 400, ("Tool call validation failed", "invalid_param")
    ),
    "groq_stream_tool_call_single_chunk_x_groq_usage.sse": Reply(
        calls=(
            Call("fc_bfb39741-3748-4def-9886-a93fc9c64a90", "get_something_by_name", {"name": "example"}),
        ),
        finish="tool_calls",
        reasoning='We need to call the function with correct parameter "name".'
        ' Provide a name, e.g., "example".',
        usage=(304, 49, 353, 0, 23, None),
        model="openai/gpt-oss-120b",
    ),
    "huggingface_router_nonstream_finish_length.json": Reply(
        content=None,
        content_prefix='<think>\nHmm, the user just said "hello".',
        finish="length",
        usage=(4, 100, 104, 0, 0, None),
        model="deepseek-ai/DeepSeek-R1",
    ),
    "huggingface_router_nonstream_tool_call.json": Reply(
        calls=(Call("call_7qxjvbuxpm6017n3jcq1uqwt", "final_result", {"response": [2, 3, 5]}),),
        finish="tool_calls",
        usage=(19, 29, 48, 0, 0, None),
        model="deepseek-ai/DeepSeek-R1",
    ),
    "mistral_api_glm_stream_tool_call_name_empty_in_continuation.chunks.jsonl": Reply(
        calls=(Call("chatcmpl-tool-9f149c74c42f265b", "webSearchTool", {"query": "current Berlin weather"}),),
        finish="tool_calls",
        usage=(171, 14, 185, 128, 0, None),
        model="zai-glm-5-2",
    ),
    "mistral_error_400_tool_call_id_format.from_issue.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Tool call id was 2968-LWy3uasib", "with a length of 9")
    ),
    "mistral_nonstream_tool_call_content_empty_string.json": Reply(
        calls=(Call("ot1MIoEMA", "get_mixed_content", {}),),
        finish="tool_calls",
        usage=(61, 8, 69, 0, 0, None),
        model="mistral-medium-latest",
    ),
    "mistral_stream_thinking_content_array_p_field.chunks.jsonl": Reply(
        content="391",
        finish="stop",
        reasoning="Okay, the user is asking for the product of 17 and 23. I need to calculate this"
        " multiplication. Let me break it down:\n\nFirst, I recall that 17 multiplied by 20 is 340 (since"
        " 17 * 20 = 340).\nThen, I need to add 17 multiplied by 3, which is 51 (since 17 * 3 = 51).\nNow,"
        " add these two results together: 340 + 51 = 391.\n\nSo, 17 * 23 = 391.",
        usage=(28, 139, 167, 0, 0, None),
        model="mistral-small-latest",
    ),
    "ollama_cloud_nonstream_tool_call_reasoning.json": Reply(
        calls=(Call("call_o2vnpxrw", "final_result", {"city": "Paris", "country": "France"}),),
        finish="tool_calls",
        reasoning=None,
        reasoning_prefix='The conversation: user asked "What is the capital of France?"',
        usage=(206, 194, 400, 0, 0, None),
        model="gpt-oss:20b",
    ),
    "ollama_local_v1_nonstream_reasoning_field.json": Reply(
        content='{ "city": "Paris", "country": "France" }',
        finish="stop",
        reasoning=None,
        reasoning_prefix="Okay, the user is asking for the capital of France.",
        usage=(136, 15, 151, 0, 0, None),
        model="qwen3:0.6b",
    ),
    "openai_error_400_code_null.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Web search options not supported with this model.",)
    ),
    "openai_error_400_context_length_exceeded.from_issue.json": Failure(
        FailureKind.CONTEXT_OVERFLOW, 400, ("maximum context length is 4097 tokens",)
    ),
    "openai_error_400_unsupported_parameter_max_tokens.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Unsupported parameter: 'max_tokens'",)
    ),
    "openai_error_400_unsupported_parameter_stop.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("Unsupported parameter: 'stop'",)
    ),
    "openai_error_400_unsupported_value.json": Failure(
        FailureKind.BAD_REQUEST, 400, ("does not support 'developer'",)
    ),
    "openai_error_404_model_not_found.json": Failure(
        FailureKind.BAD_REQUEST, 404, ("The model `gpt-5.2-proo` does not exist",)
    ),
    "openai_error_429_rate_limit_tokens.from_issue.json": Failure(
        FailureKind.RATE_LIMIT, 429, ("Rate limit reached for gpt-4o-mini",), retry_after=114 * 3600 + 18 * 60
    ),
    "openai_error_500_server_error.from_issue.json": Failure(
        FailureKind.SERVER_ERROR, 500, ("The server experienced an error",)
    ),
    "openai_error_503_model_overloaded.from_issue.json": Failure(
        FailureKind.SERVER_ERROR, 503, ("That model is currently overloaded",)
    ),
    "openai_nonstream_four_parallel_tool_calls.json": Reply(
        calls=(
            Call("call_5oUhAsPTXvRf8iYnYNtQ8wc4", "counting_tool", {"value": "one"}),
            Call("call_WR6ZV1V1Szr4gC92MCJ66c36", "counting_tool", {"value": "two"}),
            Call("call_VVclKVRM8I9VLWmxVntIbsIA", "counting_tool", {"value": "three"}),
            Call("call_aLqfQKJ3Ua3yMI25pwNQb4o6", "counting_tool", {"value": "four"}),
        ),
        finish="tool_calls",
        usage=(172, 76, 248, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "openai_nonstream_parallel_tool_calls.json": Reply(
        calls=(
            Call("call_jYdIdRZHxZTn5bWCq5jlMrJi", "delete_file", {"path": ".env"}),
            Call("call_TmlTVWQbzrXCZ4jNsCVNbNqu", "create_file", {"path": "test.txt"}),
        ),
        finish="tool_calls",
        usage=(71, 46, 117, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_nonstream_single_tool_call.json": Reply(
        calls=(Call("call_MOtXZsU6lfOmXwoBOtXKpCth", "get_weather", {"city": "Mexico City"}),),
        finish="tool_calls",
        usage=(45, 15, 60, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_nonstream_tool_call_cached_tokens.json": Reply(
        calls=(Call("call_x9KzZUT3UYazEUJiRmE0PvaU", "get_weather", {"location": "Tokyo"}),),
        finish="tool_calls",
        usage=(1187, 14, 1201, 1152, 0, None),
        model="gpt-4.1-2025-04-14",
    ),
    "openai_nonstream_tool_call_finish_reason_stop_named_tool_choice.json": Reply(
        calls=(
            Call(
                "call_czeHQgy5eiOVa0zlrtcfwepe",
                "TaskEvaluation",
                {
                    "suggestions": [
                        "Provide more context or details for similar tasks to enhance output expectations.",
                        "Encourage creativity in responses for simple tasks to engage users more"
                        " effectively.",
                    ],
                    "quality": 10,
                    "entities": [],
                },
            ),
        ),
        finish="stop",
        usage=(273, 40, 313, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "openai_nonstream_tool_call_original_formatting.json": Reply(
        calls=(Call("call_TTY8UFNo7rNCaOBUNtlRSvMG", "lookup_population", {"country": "Crumpet"}),),
        finish="tool_calls",
        usage=(92, 17, 109, 0, 0, None),
        model="gpt-4o-mini-2024-07-18",
    ),
    "openai_stream_parallel_tool_calls.sse": Reply(
        calls=(
            Call("call_3rqTYrA6H21AYUaRGP4F66oq", "get_country", {}),
            Call("call_Xw9XMKBJU48kAAd78WgIswDx", "get_product_name", {}),
        ),
        finish="tool_calls",
        usage=(364, 40, 404, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_stream_single_tool_call_args_split.sse": Reply(
        calls=(Call("call_bCEixqN8Y40SUyius8ZfVErH", "get_weather", {"location": "New York, NY"}),),
        finish="tool_calls",
        usage=(68, 18, 86, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_stream_tool_call_args_split_many_chunks.sse": Reply(
        calls=(
            Call(
                "call_4kc6691zCzjPnOuEtbEGUvz2",
                "final_result",
                {
                    "answers": [
                        {"label": "Capital of the country", "answer": "Mexico City"},
                        {"label": "Weather in the capital", "answer": "Sunny"},
                        {"label": "Product Name", "answer": "Pydantic AI"},
                    ]
                },
            ),
        ),
        finish="tool_calls",
        usage=(448, 49, 497, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_stream_tool_call_no_args_usage_chunk.chunks.jsonl": Reply(
        calls=(weather("call_NZa7xqfefoaMI2YYHowVXVlU"),),
        content="PRE_TOOL",
        finish="tool_calls",
        usage=(58, 12, 70, 0, 0, None),
        model="gpt-4o-2024-08-06",
    ),
    "openai_stream_usage_chunk_cached_tokens.sse": Reply(
        content="Farewell.",
        finish="stop",
        usage=(1144, 3, 1147, 1024, 0, None),
        model="gpt-4.1-2025-04-14",
    ),
    "openrouter_error_400_provider_error_raw_is_json_string.from_issue.json": Failure(
        FailureKind.BAD_REQUEST,
        400,
        ("Provider returned error", "must contain the word 'json'", "(provider OpenAI)"),
    ),
    "openrouter_error_401_no_auth.json": Failure(
        FailureKind.AUTH, 401, ("No cookie auth credentials found",)
    ),
    "openrouter_error_429_provider_rate_limited.json": Failure(
        FailureKind.RATE_LIMIT,
        429,
        ("Provider returned error", "temporarily rate-limited upstream", "(provider Google)"),
    ),
    "openrouter_nonstream_tool_call_gemini_reasoning_details_cost.json": Reply(
        calls=(
            Call(
                "tool_insert_level_with_spaces_3ZiChYzj8xER8HixJe7W",
                "insert_level_with_spaces",
                {
                    "spaces": [
                        {"space_type": "entryway", "space_name": "entryway"},
                        {"space_name": "living_room", "space_type": "living-room"},
                        {"space_name": "garage", "space_type": "garage"},
                    ],
                    "level": {"level_type": "ground", "level_name": "ground_floor"},
                },
            ),
        ),
        finish="tool_calls",
        usage=(326, 91, 417, 0, 0, 0.0),
        model="google/gemini-2.5-flash",
    ),
    "openrouter_nonstream_tool_call_missing_arguments_key_anthropic.json": Reply(
        calls=(Call("toolu_vrtx_015QAXScZzRDPttiPoc34AdD", "find_education_content", ABSENT),),
        content="I'll search for education content for you.",
        finish="tool_calls",
        usage=(568, 48, 616, 0, 0, None),
        model="anthropic/claude-sonnet-4.5",
    ),
    "openrouter_nonstream_tool_call_mistral_content_empty_string.json": Reply(
        calls=(Call("3sniiMddS", "divide", {"numerator": 123, "denominator": 456, "on_inf": "infinity"}),),
        finish="tool_calls",
        usage=(134, 43, 177, 0, 0, None),
        model="mistralai/mistral-small",
    ),
    "openrouter_nonstream_tool_call_qwen_content_null_cost.json": Reply(
        calls=(
            Call(
                "chatcmpl-tool-a253f574b49dd571",
                "final_result",
                {"address": {"city": "London", "street": "12 Baker Street"}, "name": "Ada Lovelace"},
            ),
        ),
        finish="tool_calls",
        usage=(280, 40, 320, 0, 0, 4e-05),
        model="qwen/qwen3-30b-a3b-instruct-2507",
    ),
    "openrouter_nonstream_usage_cost_cached.json": Reply(
        content=None,
        content_prefix="Here\u2019s a concise but thorough overview of Mars",
        finish="stop",
        reasoning=None,
        reasoning_prefix="**Exploring Mars Overview**\n\nThe user wants a comprehensive overview of Mars",
        usage=(17, 2177, 2194, 0, 960, 0.00435825),
        model="openai/gpt-5-mini",
    ),
    "openrouter_novita_kimi_stream_tool_call_full_args_first_delta.sse": Reply(
        calls=(Call("0", "llm_version", {}),),
        finish=None,
        usage=(57, 17, 74, 0, 0, 7.159e-05),
        model="moonshotai/kimi-k2",
    ),
    "openrouter_novita_kimi_stream_tool_call_id0_name_repeated_no_finish_reason.sse": Reply(
        calls=(Call("0", "llm_version", {}),),
        finish=None,
        usage=(57, 17, 74, 0, 0, 7.159e-05),
        model="moonshotai/kimi-k2",
    ),
    "openrouter_novita_kimi_stream_tool_call_id_name_colon_index.sse": Reply(
        calls=(Call("llm_version:0", "llm_version", {}),),
        finish="tool_calls",
        usage=(56, 12, 68, 0, 0, 5.952e-05),
        model="moonshotai/kimi-k2",
    ),
    "openrouter_stream_error_in_200_sse_keepalive_length.sse": Failure(
        FailureKind.IN_BAND_ERROR, 400, ("Token limit reached",)
    ),
    "openrouter_stream_reasoning_keepalive_usage_cost.sse": Reply(
        content="2 + 2 = 4",
        finish="stop",
        reasoning="This is a simple arithmetic question. 2+2 equals 4.",
        usage=(43, 36, 79, 0, 13, 0.000669),
        model="anthropic/claude-sonnet-4.5",
    ),
    "snowflake_nonstream_tool_call_no_finish_reason.json": Reply(
        calls=(Call("toolu_bdrk_015BgHUFs4HS1TVWWwNRNxip", "get_weather", {"city": "Mexico City"}),),
        finish=None,
        usage=(568, 55, 623, 0, 0, None),
        model="claude-sonnet-4-6",
    ),
    "vllm_error_400_context_length_flat_format.from_issue.json": Failure(
        FailureKind.CONTEXT_OVERFLOW, 400, ("maximum context length is 2048 tokens",)
    ),
    "xai_grok3mini_stream_tool_call_single_delta_usage_chunk.chunks.jsonl": Reply(
        calls=(weather("call_55117580", location="San Francisco"),),
        finish="tool_calls",
        reasoning="First, the user is",
        usage=(291, 26, 513, 290, 196, None),
        model="grok-3-mini",
    ),
}


def test_every_sample_has_an_expectation(shared_dir: Path) -> None:
    samples = shared_dir / "real-traffic" / "samples"
    assert samples.resolve() == SAMPLES.resolve()
    on_disk = kernel_helpers.every_file_has_an_expectation(SAMPLES, EXPECTED)
    assert on_disk == {p.name for p in samples.iterdir() if not p.name.endswith(".meta.json")}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kernel_helpers.parametrize_response_files(metafunc, SAMPLES, EXPECTED)


# The checks every response file gets (kernel_helpers.py), once per sample they apply to.
test_sample_decodes_to_what_it_says = kernel_helpers.decodes_to_what_it_says
test_sample_drives_the_machine = kernel_helpers.drives_the_machine
test_sample_stream_split_in_two_at_every_byte = kernel_helpers.stream_split_in_two_at_every_byte
test_sample_stream_split_anywhere = kernel_helpers.stream_split_anywhere
test_sample_sse_with_other_line_endings = kernel_helpers.sse_with_other_line_endings
test_sample_stream_without_content_type_is_sniffed = kernel_helpers.stream_without_content_type_is_sniffed
