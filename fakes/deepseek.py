"""FakeDeepSeek: DeepSeek's OpenAI-compatible chat API, with DeepSeek's own error codes.

DeepSeek serves the same routes with and without `/v1`, so both SDK base URLs work:
`AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url)` or `base_url=fake.base_url + "/v1"`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fakes.openai_compat import OpenAICompatibleFake

DEEPSEEK_MODELS = ["deepseek-chat", "deepseek-reasoner"]

# DeepSeek documents these statuses; the bodies keep OpenAI's shape (type/code as DeepSeek fills them).
DEEPSEEK_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "Invalid Format"),
    401: ("authentication_error", "invalid_request_error", "Authentication Fails (no such user)"),
    402: ("unknown_error", "invalid_request_error", "Insufficient Balance"),
    422: ("invalid_request_error", "invalid_request_error", "Invalid Parameters"),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate Limit Reached"),
    500: ("api_error", "internal_error", "Server Error"),
    503: ("api_error", "server_overloaded", "Server Overloaded"),
}


class FakeDeepSeek(OpenAICompatibleFake):
    """State of a fake DeepSeek account; `fail_next(402)` simulates an empty balance."""

    name = "deepseek"
    errors = DEEPSEEK_ERRORS
    owned_by = "deepseek"

    def __init__(self, api_key: str = "sk-fake-deepseek-key") -> None:
        super().__init__(api_key, DEEPSEEK_MODELS)

    def routes(self) -> list[web.AbstractRouteDef]:
        routes = []
        for prefix in ("", "/v1"):
            routes += [
                web.post(f"{prefix}/chat/completions", self.chat_completions),
                web.get(f"{prefix}/models", self.list_models),
            ]
        return routes

    def headers(self) -> dict[str, str]:
        return {"x-ds-trace-id": super().headers()["x-request-id"][4:]}

    def check_auth(self, request: web.Request) -> web.Response | None:
        denied = super().check_auth(request)
        if denied is None:
            return None
        key = request.headers.get("Authorization", "").partition(" ")[2].strip()
        message = f"Authentication Fails, Your api key: ****{key[-4:]} is invalid" if key else None
        return self.error(401, message)

    def model_error(self, model: str) -> web.Response:
        return self.error(400, "Model Not Exist")

    def validate_chat(self, body: dict[str, Any]) -> web.Response | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(422, "Failed to deserialize the JSON body into the target type: missing field `messages`")
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
            return self.error(422, "Invalid temperature value, the valid range of temperature is [0, 2]")
        if body.get("model") not in self.models:
            return self.model_error(str(body.get("model")))
        return None

    def assistant_message(self, model: str, content: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if model == "deepseek-reasoner":
            message["reasoning_content"] = "Fake reasoning: the request was read and answered deterministically."
        return message

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "prompt_cache_hit_tokens": 0,
            "prompt_cache_miss_tokens": prompt_tokens,
        }
