"""What OpenAI and DeepSeek share: Bearer auth, the `{"error": {...}}` shape, chat completions and models.

Chat completions answer with text, or with `tool_calls` when the request offers `tools` (phrasings and
summaries in `fakes/tool_calls.py`), streamed or not.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import threading
import time
import uuid
from typing import Any

from aiohttp import web

from fakes import tool_calls, translation
from fakes.base import FakeService

# status -> (type, code, message) used when a fault or check gives no better detail.
OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", None, "Not found."),
    413: ("server_error", None, "Maximum content size limit exceeded."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.I)


def error_json(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _random_id(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def _fragments(arguments: str) -> list[str]:
    """Argument JSON cut the way the API streams it: a few characters (about a token) per delta."""
    return re.findall(r'\{"|":\s?"?|",\s?"|"?\}|\s*\w+|[^\w]', arguments) if arguments else []


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


class OpenAICompatibleFake(FakeService):
    """Bearer-authenticated JSON API with OpenAI's error shape, `/chat/completions` and `/models`."""

    errors = OPENAI_ERRORS
    id_prefix = "chatcmpl-"
    owned_by = "openai"

    def __init__(self, api_key: str, models: list[str]) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = list(models)
        self._replies: list[tuple[str, str]] = []
        self._tool_rules: list[tuple[str, str, str]] = []
        self._reply_lock = threading.Lock()

    # ----- test helpers -----------------------------------------------------------------------

    def register_reply(self, contains: str, reply: str) -> None:
        """Answer chat requests whose last user message contains `contains` (case-insensitive) with `reply`."""
        with self._reply_lock:
            self._replies.append((contains.lower(), reply))

    def register_tool_call(self, contains: str, name: str, arguments: dict[str, Any] | str | None = None) -> None:
        """When tools are offered and the last user message contains `contains` (case-insensitive), call the
        offered tool `name` with `arguments` (a dict, or a JSON string sent as is). Checked before the built-in
        to-do phrasings; several matching registrations make parallel calls."""
        encoded = arguments if isinstance(arguments, str) else json.dumps(arguments or {}, separators=(",", ":"))
        with self._reply_lock:
            self._tool_rules.append((contains.lower(), name, encoded))

    # ----- wire-level helpers -----------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "12"}

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: Any = ...,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """An error in the `{"error": {...}}` shape; `code=...` means the status's usual code."""
        type_, default_code, default_message = self.errors.get(status, ("server_error", None, "Error."))
        all_headers = self.headers()
        if status == 429:
            all_headers.update(
                {
                    "retry-after": "1",
                    "retry-after-ms": "1000",
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "1s",
                }
            )
        all_headers.update(headers or {})
        body = error_json(message or default_message, type_, param, default_code if code is ... else code)
        return web.json_response(body, status=status, headers=all_headers)

    def error_response(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        return self.error(status, message, headers=headers)

    def check_auth(self, request: web.Request) -> web.Response | None:
        """None when the Bearer key matches, else the provider's 401."""
        header = request.headers.get("Authorization", "")
        match = _BEARER.match(header)
        if not match:
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        key = match.group(1)
        if key != self.api_key:
            shown = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else key
            return self.error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
            )
        return None

    def json(self, body: Any, status: int = 200) -> web.Response:
        return web.json_response(body, status=status, headers=self.headers())

    # ----- chat -------------------------------------------------------------------------------

    def model_error(self, model: str) -> web.Response:
        return self.error(
            404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
        )

    def validate_chat(self, body: dict[str, Any]) -> web.Response | None:
        """None if the request is acceptable, else the provider's error."""
        if not body.get("model"):
            return self.error(400, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(
                400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
            )
        if body["model"] not in self.models:
            return self.model_error(body["model"])
        return None

    def invalid(self, problem: tool_calls.Invalid | None) -> web.Response | None:
        return None if problem is None else self.error(400, problem.message, param=problem.param, code=problem.code)

    def validate_tools(self, body: dict[str, Any]) -> web.Response | None:
        """The checks on `tools`, `tool_choice`, `parallel_tool_calls` and tool-call/tool-result pairing."""
        tools = body.get("tools")
        if tools is not None:
            problem = tool_calls.check_tools(tools)
            if problem is not None:
                return self.invalid(problem)
        return self.invalid(
            tool_calls.check_tool_choice(body.get("tool_choice"), tools, body.get("parallel_tool_calls"))
            or tool_calls.check_tool_messages(body["messages"])
        )

    def plan_tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The tool calls the fake model makes for this request (empty: answer in text).

        `tool_choice`: "none" never calls; "auto" (default) calls what the last user message asks for;
        "required" always calls (the asked-for tools, else the first offered one); a named function is the
        only call (with the arguments the message implies when they fit). `allowed_tools` narrows the offer.
        `parallel_tool_calls: false` keeps only the first call.
        """
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        choice = body.get("tool_choice", "auto")
        if not tools or choice == "none":
            return []
        required = choice == "required"
        forced: str | None = None
        if isinstance(choice, dict) and choice.get("type") == "function":
            forced = choice["function"]["name"]
        elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = {((t or {}).get("function") or {}).get("name") for t in choice["allowed_tools"].get("tools", [])}
            tools = [t for t in tools if t["function"]["name"] in allowed]
            required = choice["allowed_tools"].get("mode") == "required"
        offered = {t["function"]["name"]: t["function"] for t in tools}
        messages = body["messages"]
        if not offered or (messages[-1].get("role") == "tool" and not required and forced is None):
            return []  # after tool results the model answers in words, unless a call is forced
        user_texts = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        last_user = user_texts[-1] if user_texts else ""
        wanted: list[tuple[str, dict[str, Any] | str]] = []
        with self._reply_lock:
            rules = list(self._tool_rules)
        wanted += [(name, args) for needle, name, args in rules if needle in last_user.lower() and name in offered]
        if not wanted:
            wanted = [(name, args) for name, args in tool_calls.parse_intents(last_user) if name in offered]
        if forced is not None:
            mine = [w for w in wanted if w[0] == forced]
            if mine:
                wanted = mine[:1]
            else:
                said = next((a for _, a in wanted if isinstance(a, dict) and a.get("title")), None)
                wanted = [(forced, {"title": said["title"]} if said else {})]
        elif not wanted and required:
            wanted = [(next(iter(offered)), {})]
        if body.get("parallel_tool_calls") is False:
            wanted = wanted[:1]
        fallback = tool_calls.clauses(last_user)[0] if tool_calls.clauses(last_user) else last_user
        calls = []
        for name, args in wanted:
            if isinstance(args, dict):
                fitted = tool_calls.fit_arguments(args, offered[name].get("parameters"), fallback)
                args = json.dumps(fitted, separators=(",", ":"), ensure_ascii=False)
            calls.append(
                {"id": "call_" + _random_id(24), "type": "function", "function": {"name": name, "arguments": args}}
            )
        return calls

    def tool_summary(self, messages: list[dict[str, Any]]) -> str | None:
        """The answer to a conversation ending in tool results, or None when it does not end in them."""
        results = tool_calls.answered_calls(messages, _content_text)
        return tool_calls.summarize(results) if results else None

    def reply_text(self, messages: list[dict[str, Any]]) -> str:
        """The deterministic assistant answer: registered reply, translation, or a marked echo."""
        user_texts = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        system_texts = [_content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
        last_user = user_texts[-1] if user_texts else ""
        with self._reply_lock:
            for needle, reply in self._replies:
                if needle in last_user.lower():
                    return reply
        target = translation.find_target(system_texts + user_texts[-1:])
        if target is not None:
            return translation.translate(translation.strip_markers(last_user), target)
        return f"Fake reply to: {last_user}"

    def assistant_message(self, model: str, content: str | None) -> dict[str, Any]:
        return {"role": "assistant", "content": content, "refusal": None, "annotations": []}

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return self.error(400, "We could not parse the JSON body of your request.")
        self.record(request).json = body
        invalid = self.validate_chat(body) or self.validate_tools(body)
        if invalid is not None:
            return invalid
        messages = body["messages"]
        calls = self.plan_tool_calls(body)
        content: str | None = None
        if not calls:
            summary = self.tool_summary(messages)
            content = summary if summary is not None else self.reply_text(messages)
        finish = "tool_calls" if calls else "stop"
        prompt_tokens = sum(count_tokens(_content_text(m.get("content"))) + 4 for m in messages)
        prompt_tokens += sum(count_tokens(json.dumps(t)) for t in body.get("tools") or [])
        produced = (
            content
            if content is not None
            else " ".join(c["function"]["name"] + " " + c["function"]["arguments"] for c in calls)
        )
        usage = self.usage(prompt_tokens, max(count_tokens(produced), 1))
        completion_id = self.id_prefix + uuid.uuid4().hex[:24]
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(
                request, completion_id, created, body["model"], content, usage, include_usage, calls
            )
        message = self.assistant_message(body["model"], content)
        if calls:
            message["tool_calls"] = calls
        return self.json(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
        )

    async def _stream(
        self,
        request: web.Request,
        completion_id: str,
        created: int,
        model: str,
        content: str | None,
        usage: dict[str, Any],
        include_usage: bool,
        calls: list[dict[str, Any]] | None = None,
    ) -> web.StreamResponse:
        """Server-sent events: role chunk, one chunk per word, finish chunk, optional usage, [DONE].

        Tool calls stream like the real API: per call, a first delta with `index`, `id`, `type` and the
        function `name` with empty `arguments`, then the arguments JSON in small fragments (`index` only).
        """
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **self.headers()})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        if calls:
            events = []
            for index, call in enumerate(calls):
                head = {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                opening = {"role": "assistant", "content": None} if index == 0 else {}
                events.append(chunk({**opening, "tool_calls": [head], **({"refusal": None} if opening else {})}, None))
                for piece in _fragments(call["function"]["arguments"]):
                    events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None))
            events.append(chunk({}, "tool_calls"))
        else:
            events = [chunk({"role": "assistant", "content": ""}, None)]
            events += [chunk({"content": piece}, None) for piece in re.findall(r"\S+\s*", content or "")]
            events.append(chunk({}, "stop"))
        if include_usage:
            events.append({**chunk({}, None), "choices": [], "usage": usage})
        for event in events:
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await asyncio.sleep(0)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ----- models -----------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.Response:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.owned_by} for m in self.models]
        return self.json({"object": "list", "data": data})
