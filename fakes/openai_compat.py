"""What OpenAI and DeepSeek share: Bearer auth, the `{"error": {...}}` shape, chat completions and models."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from typing import Any

from aiohttp import web

from fakes import translation
from fakes.base import FakeService

# status -> (type, code, message) used when a fault or check gives no better detail.
OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
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
        self._reply_lock = threading.Lock()

    # ----- test helpers -----------------------------------------------------------------------

    def register_reply(self, contains: str, reply: str) -> None:
        """Answer chat requests whose last user message contains `contains` (case-insensitive) with `reply`."""
        with self._reply_lock:
            self._replies.append((contains.lower(), reply))

    # ----- wire-level helpers -----------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "12"}

    def error(
        self, status: int, message: str | None = None, *, param: str | None = None, code: Any = ...,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """An error in the `{"error": {...}}` shape; `code=...` means the status's usual code."""
        type_, default_code, default_message = self.errors.get(status, ("server_error", None, "Error."))
        all_headers = self.headers()
        if status == 429:
            all_headers.update({
                "retry-after": "1", "retry-after-ms": "1000", "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
            })
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
            return self.error(400, "Missing required parameter: 'messages'.", param="messages",
                              code="missing_required_parameter")
        if body["model"] not in self.models:
            return self.model_error(body["model"])
        return None

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

    def assistant_message(self, model: str, content: str) -> dict[str, Any]:
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
        invalid = self.validate_chat(body)
        if invalid is not None:
            return invalid
        messages = body["messages"]
        content = self.reply_text(messages)
        prompt_tokens = sum(count_tokens(_content_text(m.get("content"))) + 4 for m in messages)
        usage = self.usage(prompt_tokens, max(count_tokens(content), 1))
        completion_id = self.id_prefix + uuid.uuid4().hex[:24]
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, completion_id, created, body["model"], content, usage, include_usage)
        return self.json({
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body["model"],
            "choices": [{
                "index": 0,
                "message": self.assistant_message(body["model"], content),
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        })

    async def _stream(
        self, request: web.Request, completion_id: str, created: int, model: str, content: str,
        usage: dict[str, Any], include_usage: bool,
    ) -> web.StreamResponse:
        """Server-sent events: role chunk, one chunk per word, finish chunk, optional usage, [DONE]."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **self.headers()})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in re.findall(r"\S+\s*", content)]
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
