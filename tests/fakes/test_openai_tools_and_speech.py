"""FakeOpenAI chat completions with tool calls, and `/v1/audio/speech`, driven through the real openai SDK."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import wave
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from fakes import FakeDeepSeek, FakeOpenAI, run_fake
from fakes import speech as fake_speech

MODEL = "gpt-4o-mini"


def client(fake: FakeOpenAI | FakeDeepSeek) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + "/v1", max_retries=0)


def function(name: str, properties: dict, required: list[str], *, strict: bool = False) -> dict:
    parameters: dict = {"type": "object", "properties": properties, "required": required}
    if strict:
        parameters["additionalProperties"] = False
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": name.replace("_", " "),
            "parameters": parameters,
            **({"strict": True} if strict else {}),
        },
    }


STRING = {"type": "string"}
PRIORITY = {"type": "string", "enum": ["low", "medium", "high"]}
TODO_TOOLS = [
    function("add_todo", {"title": STRING, "due_date": STRING, "priority": PRIORITY}, ["title"]),
    function("list_todos", {}, []),
    function("complete_todo", {"title": STRING}, ["title"]),
    function("delete_todo", {"title": STRING}, ["title"]),
    function(
        "update_todo", {"title": STRING, "new_title": STRING, "due_date": STRING, "priority": PRIORITY}, ["title"]
    ),
]
NULLABLE = {"type": ["string", "null"]}
STRICT_TOOLS = [
    function(
        "add_todo",
        {"title": STRING, "due_date": NULLABLE, "priority": {"type": ["string", "null"]}},
        ["title", "due_date", "priority"],
        strict=True,
    ),
    function("list_todos", {}, [], strict=True),
]


async def ask(fake: FakeOpenAI, text: str, tools: list[dict] | None = TODO_TOOLS, **kwargs):
    extra = {"tools": tools} if tools is not None else {}
    return await client(fake).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **extra, **kwargs
    )


def calls_of(completion) -> list[tuple[str, dict]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in completion.choices[0].message.tool_calls or []]


# ------------------------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize(
    ("text", "name", "arguments"),
    [
        ("Add buy milk", "add_todo", {"title": "buy milk"}),
        ("Please add pay rent to my list.", "add_todo", {"title": "pay rent"}),
        ("Remind me to call mom tomorrow", "add_todo", {"title": "call mom", "due_date": "tomorrow"}),
        ("Put eggs on my shopping list", "add_todo", {"title": "eggs"}),
        (
            "add file taxes by friday, high priority",
            "add_todo",
            {"title": "file taxes", "due_date": "friday", "priority": "high"},
        ),
        ("What's on my list?", "list_todos", {}),
        ("list my todos", "list_todos", {}),
        ("What do I have today?", "list_todos", {}),
        ("Mark buy milk done", "complete_todo", {"title": "buy milk"}),
        ("complete the laundry", "complete_todo", {"title": "laundry"}),
        ("I finished my taxes!", "complete_todo", {"title": "taxes"}),
        ("Delete call mom", "delete_todo", {"title": "call mom"}),
        ("can you remove eggs from my list", "delete_todo", {"title": "eggs"}),
        ("Rename milk to oat milk", "update_todo", {"title": "milk", "new_title": "oat milk"}),
        ("change dentist to dentist at 3pm", "update_todo", {"title": "dentist", "new_title": "dentist at 3pm"}),
        ("change dentist to next monday", "update_todo", {"title": "dentist", "due_date": "next monday"}),
        ("make taxes high priority", "update_todo", {"title": "taxes", "priority": "high"}),
    ],
)
async def test_each_phrasing_becomes_its_tool_call(openai_fake, text, name, arguments):
    completion = await ask(openai_fake, text)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and choice.message.role == "assistant"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == (name, arguments)
    assert completion.usage.completion_tokens > 0


async def test_request_is_recorded_with_its_tools(openai_fake):
    await ask(openai_fake, "add buy milk")
    (request,) = openai_fake.requests_to("/v1/chat/completions")
    assert [t["function"]["name"] for t in request.json["tools"]] == [t["function"]["name"] for t in TODO_TOOLS]


async def test_tool_round_trip_ends_in_a_spoken_summary(openai_fake):
    api = client(openai_fake)
    messages: list[dict] = [{"role": "user", "content": "Add buy milk, then what's on my list?"}]
    first = await api.chat.completions.create(model=MODEL, messages=messages, tools=TODO_TOOLS)
    add, listing = first.choices[0].message.tool_calls
    assert (add.function.name, listing.function.name) == ("add_todo", "list_todos")
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": add.id, "content": json.dumps({"ok": True, "id": 7})})
    messages.append(
        {
            "role": "tool",
            "tool_call_id": listing.id,
            "content": json.dumps({"todos": [{"title": "buy milk"}, {"title": "call mom"}]}),
        }
    )
    second = await api.chat.completions.create(model=MODEL, messages=messages, tools=TODO_TOOLS)
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert second.choices[0].message.content == "Added buy milk to your list. You have 2 items: buy milk, call mom."


@pytest.mark.parametrize(
    ("text", "result", "summary"),
    [
        ("mark buy milk done", {"ok": True}, "Marked buy milk as done."),
        ("delete call mom", "deleted", "Removed call mom from your list."),
        ("rename milk to oat milk", {"ok": True}, "Renamed milk to oat milk."),
        ("make taxes high priority", {"ok": True}, "Updated taxes: high priority."),
        ("remind me to pay rent tomorrow", {"ok": True}, "Added pay rent to your list (due tomorrow)."),
        ("list my todos", [], "Your list is empty."),
        ("list my todos", ["buy milk"], "You have 1 item: buy milk."),
        ("delete the dentist", {"error": "no such item"}, "Sorry, I couldn't remove dentist: no such item."),
    ],
)
async def test_summaries_are_built_from_the_tool_results(openai_fake, text, result, summary):
    first = await ask(openai_fake, text)
    call = first.choices[0].message.tool_calls[0]
    content = result if isinstance(result, str) else json.dumps(result)
    messages = [
        {"role": "user", "content": text},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": content},
    ]
    second = await client(openai_fake).chat.completions.create(model=MODEL, messages=messages, tools=TODO_TOOLS)
    assert second.choices[0].message.content == summary


async def test_unmatched_phrasing_with_tools_is_a_plain_reply(openai_fake):
    completion = await ask(openai_fake, "Tell me a joke")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == "Fake reply to: Tell me a joke"


async def test_only_offered_tools_are_called(openai_fake):
    completion = await ask(openai_fake, "delete call mom", tools=TODO_TOOLS[:2])
    assert completion.choices[0].message.tool_calls is None


async def test_parallel_calls_and_parallel_tool_calls_false(openai_fake):
    text = "Add buy milk; remind me to call mom. And then list my todos"
    both = await ask(openai_fake, text)
    assert [name for name, _ in calls_of(both)] == ["add_todo", "add_todo", "list_todos"]
    assert len({c.id for c in both.choices[0].message.tool_calls}) == 3
    one = await ask(openai_fake, text, parallel_tool_calls=False)
    assert calls_of(one) == [("add_todo", {"title": "buy milk"})]


async def test_tool_choice_none_required_and_named(openai_fake):
    none = await ask(openai_fake, "add buy milk", tool_choice="none")
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason == "stop"
    required = await ask(openai_fake, "hello there", tool_choice="required")
    assert calls_of(required) == [("add_todo", {"title": "hello there"})]
    named = await ask(openai_fake, "add buy milk", tool_choice={"type": "function", "function": {"name": "list_todos"}})
    assert calls_of(named) == [("list_todos", {})]
    retitled = await ask(
        openai_fake, "add buy milk", tool_choice={"type": "function", "function": {"name": "complete_todo"}}
    )
    assert calls_of(retitled) == [("complete_todo", {"title": "buy milk"})]
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "list_todos"}}]},
    }
    assert (await ask(openai_fake, "add buy milk", tool_choice=allowed)).choices[0].message.tool_calls is None


async def test_after_tool_results_auto_answers_in_words_but_required_calls_again(openai_fake):
    first = await ask(openai_fake, "list my todos")
    call = first.choices[0].message.tool_calls[0]
    messages = [
        {"role": "user", "content": "list my todos"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "[]"},
    ]
    api = client(openai_fake)
    again = await api.chat.completions.create(model=MODEL, messages=messages, tools=TODO_TOOLS, tool_choice="required")
    assert calls_of(again) == [("list_todos", {})]


async def test_registered_tool_call_wins_for_any_tool(openai_fake):
    weather = function("get_weather", {"city": STRING, "unit": {"type": "string"}}, ["city"])
    openai_fake.register_tool_call("weather in paris", "get_weather", {"city": "Paris", "unit": "celsius"})
    completion = await ask(openai_fake, "What's the weather in Paris?", tools=[*TODO_TOOLS, weather])
    assert calls_of(completion) == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    # Not offered: not called.
    assert (await ask(openai_fake, "weather in Paris")).choices[0].message.tool_calls is None
    call = completion.choices[0].message.tool_calls[0]
    messages = [
        {"role": "user", "content": "What's the weather in Paris?"},
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    answer = await client(openai_fake).chat.completions.create(model=MODEL, messages=messages, tools=[weather])
    assert answer.choices[0].message.content == 'Done: get_weather returned {"temp": 21}.'


async def test_strict_schemas_get_every_key_and_the_sdk_parses_them(openai_fake):
    completion = await client(openai_fake).chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "remind me to call mom"}], tools=STRICT_TOOLS
    )
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.parsed_arguments == {"title": "call mom", "due_date": None, "priority": None}


async def test_streamed_tool_calls_are_reassembled_by_the_sdk(openai_fake):
    api = client(openai_fake)
    async with api.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "add pay rent by friday. Then what's on my list"}],
        tools=STRICT_TOOLS,
        stream_options={"include_usage": True},
    ) as stream:
        deltas = [event async for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = await stream.get_final_completion()
    assert len(deltas) > 4  # arguments arrive in fragments, like the real API
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    first, second = choice.message.tool_calls
    assert first.function.parsed_arguments == {"title": "pay rent", "due_date": "friday", "priority": None}
    assert (second.function.name, second.function.arguments) == ("list_todos", "{}")
    assert final.usage is not None and final.usage.completion_tokens > 0


async def test_raw_stream_chunks_have_the_real_shape(openai_fake):
    stream = await ask(openai_fake, "remind me to call mom", stream=True)
    chunks = [chunk async for chunk in stream]
    opening = chunks[0].choices[0].delta
    assert opening.role == "assistant" and opening.tool_calls[0].id.startswith("call_")
    assert opening.tool_calls[0].function.name == "add_todo" and opening.tool_calls[0].function.arguments == ""
    pieces = [c.choices[0].delta.tool_calls[0] for c in chunks[1:-1]]
    assert all(p.id is None and p.index == 0 for p in pieces)
    assert "".join(p.function.arguments for p in pieces) == '{"title":"call mom"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_deepseek_shares_the_tool_engine(deepseek_fake):
    completion = await client(deepseek_fake).chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": "add buy milk"}], tools=TODO_TOOLS
    )
    assert calls_of(completion) == [("add_todo", {"title": "buy milk"})]


# ----------------------------------------------------------------------------------------- tool errors


async def bad_request(fake: FakeOpenAI, **kwargs) -> openai.BadRequestError:
    kwargs.setdefault("messages", [{"role": "user", "content": "add milk"}])
    with pytest.raises(openai.BadRequestError) as caught:
        await client(fake).chat.completions.create(model=MODEL, **kwargs)
    assert caught.value.status_code == 400 and caught.value.type == "invalid_request_error"
    return caught.value


async def test_invalid_tools_are_refused_like_the_api(openai_fake):
    error = await bad_request(openai_fake, tools=[function("add todo", {}, [])])
    assert error.param == "tools[0].function.name" and error.code == "invalid_value"
    assert error.body["message"] == (
        "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the "
        "pattern '^[a-zA-Z0-9_-]+$'."
    )
    error = await bad_request(openai_fake, tools=[{"type": "function"}])
    assert error.code == "missing_required_parameter" and error.param == "tools[0].function"
    error = await bad_request(
        openai_fake, tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]
    )
    assert error.code == "invalid_function_parameters"
    assert "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"string\"'" in error.body["message"]
    strict = function("add_todo", {"title": STRING, "due": STRING}, ["title"], strict=True)
    error = await bad_request(openai_fake, tools=[strict])
    assert error.body["message"] == (
        "Invalid schema for function 'add_todo': In context=(), 'required' is required to be supplied and to be an "
        "array including every key in properties. Missing 'due'."
    )
    error = await bad_request(openai_fake, tools=[])
    assert error.code == "empty_array"


async def test_tool_choice_without_tools_or_naming_an_unknown_function(openai_fake):
    error = await bad_request(openai_fake, tool_choice="auto")
    assert error.body["message"] == (
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
    )
    error = await bad_request(openai_fake, parallel_tool_calls=False)
    assert "'parallel_tool_calls' is only allowed when 'tools' are specified" in error.body["message"]
    error = await bad_request(
        openai_fake, tools=TODO_TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}}
    )
    assert error.param == "tool_choice.function.name"


async def test_tool_message_that_answers_no_call_is_refused(openai_fake):
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_real", "type": "function", "function": {"name": "list_todos", "arguments": "{}"}}],
    }
    user = {"role": "user", "content": "list my todos"}
    error = await bad_request(
        openai_fake,
        tools=TODO_TOOLS,
        messages=[user, assistant, {"role": "tool", "tool_call_id": "call_other", "content": "[]"}],
    )
    assert error.body["message"] == (
        "Invalid parameter: 'tool_call_id' of 'call_other' not found in 'tool_calls' of previous message."
    )
    error = await bad_request(openai_fake, messages=[user, {"role": "tool", "tool_call_id": "call_x", "content": "1"}])
    assert error.body["message"] == (
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
    )
    assert error.param == "messages.[1].role" and error.code is None
    error = await bad_request(openai_fake, tools=TODO_TOOLS, messages=[user, assistant, user])
    assert error.body["message"].endswith("The following tool_call_ids did not have response messages: call_real")


# ----------------------------------------------------------------------------------------------- speech


def wav_info(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes() / wav.getframerate()


def probe(data: bytes, tmp_path: Path, suffix: str) -> tuple[str, float]:
    """(codec, duration) as ffprobe reads them from a file (pipes hide the duration of mp3/aac/opus)."""
    path = tmp_path / f"speech.{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    info = json.loads(out.stdout)
    return info["streams"][0]["codec_name"], float(info["format"]["duration"])


needs_ffmpeg = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="no ffmpeg")
SENTENCE = "Your list has two items: buy milk, and call mom."


async def test_speech_wav_is_24k_mono_pcm_with_a_duration_following_the_text():
    async with run_fake(FakeOpenAI(speech_engine="tone")) as fake:
        api = client(fake)
        short = await api.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format="wav")
        long = await api.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE * 4, response_format="wav")
        assert short.response.headers["content-type"] == "audio/wav"
        assert short.response.headers["transfer-encoding"] == "chunked"
        rate, channels, width, seconds = wav_info(short.content)
        assert (rate, channels, width) == (24_000, 1, 2)
        long_seconds = wav_info(long.content)[3]
        assert 0.03 * len(SENTENCE * 4) < long_seconds < 0.15 * len(SENTENCE * 4)
        assert long_seconds > 10 * seconds
        (request, _) = fake.requests_to("/v1/audio/speech")
        assert request.json == {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "wav"}
        assert request.status == 200


async def test_speech_pcm_is_raw_24k_and_speed_scales_it():
    async with run_fake(FakeOpenAI(speech_engine="tone")) as fake:
        api = client(fake)
        normal = await api.audio.speech.create(
            model="gpt-4o-mini-tts",
            voice="coral",
            input=SENTENCE,
            response_format="pcm",
            instructions="Speak cheerfully.",
        )
        fast = await api.audio.speech.create(
            model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="pcm", speed=2.0
        )
        again = await api.audio.speech.create(
            model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="pcm"
        )
        assert normal.response.headers["content-type"] == "audio/pcm"
        assert len(normal.content) % 2 == 0 and normal.content == again.content  # deterministic
        assert len(fast.content) / len(normal.content) == pytest.approx(0.5, rel=0.01)
        wav = await api.audio.speech.create(
            model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="wav"
        )
        assert wav.content.endswith(normal.content)  # the wav is the same samples with a RIFF header


@needs_ffmpeg
async def test_speech_mp3_is_the_default_and_decodes(openai_fake, tmp_path):
    result = await client(openai_fake).audio.speech.create(model="tts-1-hd", voice="onyx", input=SENTENCE)
    assert result.response.headers["content-type"] == "audio/mpeg"
    codec, seconds = probe(result.content, tmp_path, "mp3")
    assert codec == "mp3" and 0.03 * len(SENTENCE) < seconds < 0.15 * len(SENTENCE)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("fmt", "codec", "content_type"),
    [("opus", "opus", "audio/opus"), ("aac", "aac", "audio/aac"), ("flac", "flac", "audio/flac")],
)
async def test_speech_compressed_formats_decode(fmt, codec, content_type, tmp_path):
    async with run_fake(FakeOpenAI(speech_engine="tone")) as fake:
        result = await client(fake).audio.speech.create(
            model="tts-1", voice="nova", input="Buy milk.", response_format=fmt
        )
    assert result.response.headers["content-type"] == content_type
    got_codec, seconds = probe(result.content, tmp_path, {"opus": "ogg", "aac": "aac"}.get(fmt, fmt))
    expected = len(fake_speech.babble("Buy milk.", "nova")) / fake_speech.SAMPLE_RATE
    assert got_codec == codec and seconds == pytest.approx(expected, abs=0.1)  # encoders pad a few frames


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
async def test_speech_uses_espeak_when_installed(openai_fake):
    result = await client(openai_fake).audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="wav"
    )
    tone = fake_speech.babble(SENTENCE, "alloy")
    samples = wav_info(result.content)
    assert samples[0] == 24_000 and 0.03 * len(SENTENCE) < samples[3] < 0.15 * len(SENTENCE)
    assert result.content[44:] != fake_speech.wav_bytes(tone)[44:]


async def test_speech_streams_in_chunks_with_the_streaming_response(openai_fake):
    api = client(openai_fake)
    async with api.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=SENTENCE * 2, response_format="pcm"
    ) as response:
        chunks = [chunk async for chunk in response.iter_bytes()]
    assert len(chunks) > 1 and sum(map(len, chunks)) > 24_000


async def test_speech_sse_stream_format(openai_fake):
    api = client(openai_fake)
    async with api.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="marin", input="Hello there.", response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = [line async for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines]
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) > 24_000 and len(audio) % 2 == 0
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] == 3


async def speech_error(fake: FakeOpenAI, error: type[openai.APIStatusError], **kwargs) -> openai.APIStatusError:
    params = {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "wav", **kwargs}
    with pytest.raises(error) as caught:
        await client(fake).audio.speech.create(**params)
    return caught.value


async def test_speech_errors(openai_fake):
    too_long = await speech_error(openai_fake, openai.BadRequestError, input="a" * 4097)
    assert too_long.body == {
        "message": "[{'type': 'string_too_long', 'loc': ('body', 'input'), 'msg': 'String should have at most 4096 "
        "characters', 'ctx': {'max_length': 4096}}]",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    await client(openai_fake).audio.speech.create(model="tts-1", voice="alloy", input="a" * 4096, response_format="pcm")
    voice = await speech_error(openai_fake, openai.BadRequestError, voice="robot")
    assert "'loc': ('body', 'voice')" in voice.body["message"] and "'alloy', 'ash'" in voice.body["message"]
    ballad = await speech_error(openai_fake, openai.BadRequestError, voice="ballad")
    assert "'ballad'" not in ballad.body["message"].split("Input should be")[1].split("'input'")[0]
    await client(openai_fake).audio.speech.create(
        model="gpt-4o-mini-tts", voice="ballad", input="Hi.", response_format="pcm"
    )
    speed = await speech_error(openai_fake, openai.BadRequestError, speed=4.5)
    assert "less_than_equal" in speed.body["message"]
    fmt = await speech_error(openai_fake, openai.BadRequestError, response_format="ogg")
    assert "'loc': ('body', 'response_format')" in fmt.body["message"]
    sse = await speech_error(openai_fake, openai.BadRequestError, stream_format="sse")
    assert sse.param == "stream_format"
    model = await speech_error(openai_fake, openai.NotFoundError, model="tts-2")
    assert model.code == "model_not_found"
    bad_key = AsyncOpenAI(api_key="sk-wrong-key-123456", base_url=openai_fake.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad_key.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    openai_fake.fail_next(503, path="/v1/audio/speech")
    await speech_error(openai_fake, openai.InternalServerError)
    assert [r.status for r in openai_fake.requests_to("/v1/audio/speech")][-2:] == [401, 503]


async def test_compressed_format_without_ffmpeg_is_refused(openai_fake, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(fake_speech.shutil, "which", lambda name: None if name == "ffmpeg" else real_which(name))
    error = await speech_error(openai_fake, openai.BadRequestError, response_format="mp3")
    assert error.param == "response_format" and "ffmpeg is not installed" in error.body["message"]
    ok = await client(openai_fake).audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="wav")
    assert wav_info(ok.content)[0] == 24_000
