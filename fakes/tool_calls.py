"""Deterministic function calling for the chat fakes: a to-do assistant's phrasings → tool calls, and
tool results → a spoken-style summary. Also the request checks the real API makes on `tools`, `tool_choice`
and `role: "tool"` messages. Pure functions; the wire format lives in `fakes/openai_compat.py`.

Phrasings are matched on the last user message, one intent per clause (clauses are split at sentence ends,
";", "and then", ", then", "and also"), case-insensitively, after dropping politeness ("please", "can you",
"hey", ...). In order:

- `list_todos` {}: "what's on my list", "list my todos", "show my tasks", "what do I have (today)",
  "read my list".
- `add_todo` {title, due_date?, priority?}: "remind me to X", "put X on my list", "add X (to my list)".
- `complete_todo` {title}: "mark X (as) done/complete", "complete X", "finish X", "check off X",
  "I finished/completed/did X".
- `update_todo` {title, new_title?, due_date?, priority?}: "rename X to Y", "make X high/low/medium priority",
  "change X to Y", "move X to <date>", "set the priority of X to high".
- `delete_todo` {title}: "delete X", "remove X (from my list)", "cross off X", "drop X".

`due_date` and `priority` are cut from the end of an added title ("add call mom tomorrow, high priority").
Dates stay the words that were said ("tomorrow", "friday", "2025-03-01", "next week"), lowercased and never
resolved against the clock, so answers do not depend on the day the test runs. Priorities normalise to
high/medium/low (urgent, important, top → high; normal → medium). "change X to Y" sets the priority if Y is
one, the due date if Y is a date, else renames. Leading "the"/"my" are dropped from titles that refer to an
existing item (complete, delete, update), not from added ones.

A tool is called only if the request offers it. Arguments are fitted to the offered schema: properties the
schema lacks are dropped, and required ones that were not said are filled (null when nullable, as a strict
schema needs; else an empty value of the type).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------- phrasings

_WEEKDAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
DATE = (
    rf"(?:today|tonight|tomorrow(?:\s+(?:morning|afternoon|evening|night))?|this\s+(?:morning|afternoon|evening)"
    rf"|(?:this|next)\s+(?:week(?:end)?|month|{_WEEKDAYS})|{_WEEKDAYS}|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}"
    rf"|end of (?:the )?(?:day|week|month))"
)
PRIORITY_WORDS = {
    "high": "high",
    "urgent": "high",
    "important": "high",
    "top": "high",
    "medium": "medium",
    "normal": "medium",
    "low": "low",
}
_PRIORITY = r"(?:high|urgent|important|top|medium|normal|low)"

_LIST = r"(?:(?:to-?do|todo|task|shopping)\s+)?list"
_MY_LIST = rf"(?:my|the)\s+{_LIST}"

_POLITE_PREFIX = re.compile(
    r"^(?:(?:hey|hi|ok(?:ay)?|so|oh|um+|uh+|please|pls|assistant|can you|could you|would you|will you|"
    r"i need you to|i want you to|i'd like you to|go ahead and|now|then|and|also|and also|and then)[,\s]+)+",
    re.I,
)
_POLITE_SUFFIX = re.compile(r"(?:[,\s]+(?:please|for me|thanks|thank you))+$", re.I)
_CLAUSES = re.compile(r"(?<=[.!?;])\s+|\s*;\s*|,?\s+and then\s+|,\s*then\s+|,?\s+and also\s+", re.I)

# (tool, pattern) in priority order; named groups: title, new, prio, due.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "list_todos",
        re.compile(
            rf"^(?:what(?:'s| is| do i have)\s+(?:on|in)\s+{_MY_LIST}"
            rf"|what do i (?:have|need to do)(?:\s+(?:to do|today|tomorrow|left|on my plate))?"
            rf"|(?:list|show|read)(?:\s+me)?\s+(?:all\s+)?(?:my|the)\s+(?:to-?dos?|todos?|tasks|items|{_LIST})"
            rf"|what(?:'s| is) on my plate|(?:read|show)(?:\s+me)?\s+{_MY_LIST})$",
            re.I,
        ),
    ),
    ("add_todo", re.compile(r"^remind me to\s+(?P<title>.+)$", re.I)),
    (
        "add_todo",
        re.compile(rf"^(?:put|add|write down|write|stick)\s+(?P<title>.+?)\s+(?:on|to|in|onto)\s+{_MY_LIST}$", re.I),
    ),
    (
        "complete_todo",
        re.compile(r"^(?:mark|set)\s+(?P<title>.+?)\s+(?:as\s+)?(?:done|complete|completed|finished)$", re.I),
    ),
    ("complete_todo", re.compile(r"^(?:complete|finish|check off|tick off)\s+(?P<title>.+)$", re.I)),
    (
        "complete_todo",
        re.compile(r"^i(?:'ve| have)?\s+(?:just\s+)?(?:finished|completed|done|did)\s+(?P<title>.+)$", re.I),
    ),
    ("update_todo", re.compile(r"^rename\s+(?P<title>.+?)\s+to\s+(?P<new>.+)$", re.I)),
    ("update_todo", re.compile(rf"^make\s+(?P<title>.+?)\s+(?:an?\s+)?(?P<prio>{_PRIORITY})(?:\s+priority)?$", re.I)),
    (
        "update_todo",
        re.compile(
            rf"^(?:set|change)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+(?P<title>.+?)\s+to\s+"
            rf"(?P<prio>{_PRIORITY})$",
            re.I,
        ),
    ),
    ("update_todo", re.compile(rf"^(?:move|reschedule|push|postpone)\s+(?P<title>.+?)\s+to\s+(?P<due>{DATE})$", re.I)),
    ("update_todo", re.compile(r"^change\s+(?P<title>.+?)\s+to\s+(?P<new>.+)$", re.I)),
    (
        "delete_todo",
        re.compile(
            rf"^(?:delete|remove|drop|erase|cross off|scratch)\s+(?P<title>.+?)(?:\s+(?:from|off)\s+{_MY_LIST})?$", re.I
        ),
    ),
    ("add_todo", re.compile(rf"^add\s+(?P<title>.+?)(?:\s+to\s+{_MY_LIST})?$", re.I)),
]

_PRIORITY_SUFFIX = re.compile(
    rf",?\s+(?:(?:with|as|at)\s+)?(?:an?\s+)?(?:(?P<p>{_PRIORITY})[- ]priority|priority\s+(?P<q>{_PRIORITY})|"
    rf"(?:it's\s+|it is\s+)?(?P<u>urgent))$",
    re.I,
)
_DUE_SUFFIX = re.compile(rf",?\s+(?:(?:due|by|on|before|for|due by|due on|until)\s+)?(?P<due>{DATE})$", re.I)


_LIST_SUFFIX = re.compile(rf"\s+(?:to|on|in|onto)\s+{_MY_LIST}$", re.I)


def _clean(text: str) -> str:
    text = text.strip().strip(" \t\"'“”‘’").rstrip(".!?,;: ")
    return text.strip(" \t\"'“”‘’")


def _existing(title: str) -> str:
    """A title that names an item already on the list: without a leading "the"/"my"/"item"."""
    return _clean(re.sub(r"^(?:the|my|item|task|to-?do)\s+", "", _clean(title), flags=re.I))


def normalize_priority(word: str) -> str:
    return PRIORITY_WORDS.get(word.lower().replace(" priority", "").strip(), word.lower())


def _split_extras(title: str) -> tuple[str, str | None, str | None]:
    """(title, due_date, priority) with a trailing date and/or priority cut off the title."""
    due = priority = None
    for _ in range(2):
        if priority is None and (match := _PRIORITY_SUFFIX.search(title)):
            priority = normalize_priority(match.group("p") or match.group("q") or match.group("u"))
            title = title[: match.start()]
        if due is None and (match := _DUE_SUFFIX.search(title)):
            due = re.sub(r"\s+", " ", match.group("due").lower())
            title = title[: match.start()]
    return _clean(title), due, priority


def clauses(text: str) -> list[str]:
    """The user's message as separate requests, politeness removed."""
    result = []
    for clause in _CLAUSES.split((text or "").replace("\u2019", "'")):
        clause = _clean(clause)
        clause = _POLITE_SUFFIX.sub("", _POLITE_PREFIX.sub("", clause))
        clause = _clean(clause)
        if clause:
            result.append(clause)
    return result


def parse_clause(clause: str) -> tuple[str, dict[str, Any]] | None:
    """The (tool name, arguments) one clause asks for, or None."""
    for name, pattern in _RULES:
        match = pattern.match(clause)
        if match is None:
            continue
        groups = match.groupdict()
        if name == "list_todos":
            return name, {}
        if name == "add_todo":
            title, due, priority = _split_extras(groups["title"])
            title = _clean(_LIST_SUFFIX.sub("", title))  # "add X to my list tomorrow"
            if not title:
                continue
            args: dict[str, Any] = {"title": title}
            if due:
                args["due_date"] = due
            if priority:
                args["priority"] = priority
            return name, args
        title = _existing(groups["title"])
        if not title:
            continue
        if name in ("complete_todo", "delete_todo"):
            return name, {"title": title}
        # update_todo
        args = {"title": title}
        if groups.get("prio"):
            args["priority"] = normalize_priority(groups["prio"])
        elif groups.get("due"):
            args["due_date"] = re.sub(r"\s+", " ", groups["due"].lower())
        elif groups.get("new"):
            new = _clean(groups["new"])
            if priority := re.fullmatch(rf"(?:an?\s+)?(?P<p>{_PRIORITY})(?:\s+priority)?", new, re.I):
                args["priority"] = normalize_priority(priority.group("p"))
            elif re.fullmatch(rf"(?:due\s+)?{DATE}", new, re.I):
                args["due_date"] = re.sub(r"^due\s+", "", new.lower())
            else:
                args["new_title"] = new
        return name, args
    return None


def parse_intents(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (tool, arguments) the message asks for, one per clause, in order."""
    return [intent for clause in clauses(text) if (intent := parse_clause(clause)) is not None]


# ------------------------------------------------------------------------------------- fitting to a schema


def _nullable(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(isinstance(s, dict) and _nullable(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _empty_value(schema: dict[str, Any], fallback_text: str) -> Any:
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    return {"string": fallback_text, "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}.get(
        kind, fallback_text
    )


def fit_arguments(arguments: dict[str, Any], parameters: dict[str, Any] | None, fallback_text: str = "") -> dict:
    """`arguments` reduced to the schema's properties, with missing required ones filled in."""
    if not isinstance(parameters, dict) or not isinstance(parameters.get("properties"), dict):
        return dict(arguments)
    properties: dict[str, Any] = parameters["properties"]
    fitted = {k: v for k, v in arguments.items() if k in properties}
    for key, value in list(fitted.items()):
        enum = properties[key].get("enum") if isinstance(properties[key], dict) else None
        if enum and value not in enum:
            fitted[key] = next((e for e in enum if isinstance(e, str) and e.lower() == str(value).lower()), enum[0])
    for key in parameters.get("required") or []:
        if key in fitted or key not in properties:
            continue
        schema = properties[key] if isinstance(properties[key], dict) else {}
        fitted[key] = None if _nullable(schema) else _empty_value(schema, fallback_text)
    return {key: fitted[key] for key in properties if key in fitted}


# ----------------------------------------------------------------------------------------------- summaries


@dataclass
class ToolResult:
    """One answered call: what was called with what, and the tool message's content."""

    name: str
    arguments: dict[str, Any]
    content: str


def _parse(content: str) -> Any:
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return content


def _failure(result: Any) -> str | None:
    """The error a tool reported, if it reported one."""
    if isinstance(result, dict):
        if result.get("error"):
            error = result["error"]
            return str(error.get("message", error)) if isinstance(error, dict) else str(error)
        if (
            result.get("ok") is False
            or result.get("success") is False
            or result.get("status")
            in (
                "error",
                "failed",
                "not_found",
            )
        ):
            return str(result.get("message") or result.get("detail") or "it failed")
    if isinstance(result, str) and re.match(r"^\s*(?:error|failed|not found)\b", result, re.I):
        return re.sub(r"^\s*error\s*:?\s*", "", result, flags=re.I).rstrip(".") or "it failed"
    return None


def _item_title(item: Any) -> str:
    if isinstance(item, dict):
        title = next((item[k] for k in ("title", "name", "text", "task", "description") if item.get(k)), None)
        text = str(title) if title is not None else json.dumps(item, sort_keys=True)
        if item.get("done") or item.get("completed") or item.get("status") in ("done", "completed"):
            text += " (done)"
        return text
    return str(item)


def _items(result: Any) -> list[Any] | None:
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        for key in ("todos", "items", "tasks", "results", "data", "list"):
            if isinstance(result.get(key), list):
                return result[key]
    return None


def _title(call: ToolResult, result: Any) -> str:
    title = call.arguments.get("title")
    if not title and isinstance(result, dict):
        todo = result.get("todo") if isinstance(result.get("todo"), dict) else {}
        title = result.get("title") or todo.get("title")
    return str(title or "that item")


_FAILED_VERB = {
    "add_todo": "add {title}",
    "complete_todo": "mark {title} as done",
    "delete_todo": "remove {title}",
    "update_todo": "update {title}",
    "list_todos": "get your list",
}


def summarize_one(call: ToolResult) -> str:
    result = _parse(call.content)
    title = _title(call, result)
    failure = _failure(result)
    if failure is not None:
        verb = _FAILED_VERB.get(call.name, f"run {call.name}").format(title=title)
        return f"Sorry, I couldn't {verb}: {failure}."
    args = call.arguments
    if call.name == "add_todo":
        extras = [
            f"due {args['due_date']}" if args.get("due_date") else "",
            f"{args['priority']} priority" if args.get("priority") else "",
        ]
        extra = ", ".join(e for e in extras if e)
        return f"Added {title} to your list" + (f" ({extra})." if extra else ".")
    if call.name == "list_todos":
        items = _items(result)
        if items is None:
            return f"Here's your list: {call.content.strip()}."
        if not items:
            return "Your list is empty."
        names = ", ".join(_item_title(item) for item in items)
        return f"You have {len(items)} item{'s' if len(items) != 1 else ''}: {names}."
    if call.name == "complete_todo":
        return f"Marked {title} as done."
    if call.name == "delete_todo":
        return f"Removed {title} from your list."
    if call.name == "update_todo":
        if args.get("new_title") and not args.get("due_date") and not args.get("priority"):
            return f"Renamed {title} to {args['new_title']}."
        changes = [
            f"renamed to {args['new_title']}" if args.get("new_title") else "",
            f"due {args['due_date']}" if args.get("due_date") else "",
            f"{args['priority']} priority" if args.get("priority") else "",
        ]
        done = ", ".join(c for c in changes if c)
        return f"Updated {title}: {done}." if done else f"Updated {title}."
    text = call.content.strip() if isinstance(result, str) else json.dumps(result, sort_keys=True)
    return f"Done: {call.name} returned {text}."


def summarize(results: list[ToolResult]) -> str:
    """The assistant's answer after tool results: one sentence per result, in order."""
    return " ".join(summarize_one(r) for r in results) or "Done."


# -------------------------------------------------------------------------------------- request checking


@dataclass
class Invalid:
    """A 400 the real API gives, in its words: message, param, code."""

    message: str
    param: str | None = None
    code: str | None = None


_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_TOOLS = 128


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")


def _invalid_type(param: str, expected: str, value: Any) -> Invalid:
    return Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.", param, "invalid_type"
    )


def _missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _strict_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """What strict mode refuses in an object schema: additionalProperties must be false, all keys required."""
    if not isinstance(schema, dict):
        return None
    where = f"In context={context!r}"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            return (
                f"{where}, 'required' is required to be supplied and to be an array including every key in "
                f"properties. Missing '{missing[0]}'."
            )
        for key, sub in properties.items():
            problem = _strict_problem(sub, (*context, "properties", key))
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        return _strict_problem(schema["items"], (*context, "items"))
    for keyword in ("anyOf", "oneOf"):
        for index, sub in enumerate(schema.get(keyword) or []):
            problem = _strict_problem(sub, (*context, keyword, str(index)))
            if problem:
                return problem
    return None


def check_tools(tools: Any) -> Invalid | None:
    """The real API's checks on `tools`: an array of 1..128 function (or custom) tools with valid names and
    object schemas, strict schemas following the strict-mode rules."""
    if not isinstance(tools, list):
        return _invalid_type("tools", "an array", tools)
    if not tools:
        return Invalid(
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "tools",
            "empty_array",
        )
    if len(tools) > MAX_TOOLS:
        return Invalid(
            f"Invalid 'tools': array too long. Expected an array with maximum length {MAX_TOOLS}, but got "
            f"an array with length {len(tools)} instead.",
            "tools",
            "array_above_max_length",
        )
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            return _invalid_type(where, "an object", tool)
        if "type" not in tool:
            return _missing(f"{where}.type")
        if tool["type"] not in ("function", "custom"):
            return Invalid(
                f"Invalid value: '{tool['type']}'. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
                "invalid_value",
            )
        body_key = tool["type"]
        body = tool.get(body_key)
        if body is None:
            return _missing(f"{where}.{body_key}")
        if not isinstance(body, dict):
            return _invalid_type(f"{where}.{body_key}", "an object", body)
        name = body.get("name")
        if name is None:
            return _missing(f"{where}.{body_key}.name")
        if not isinstance(name, str):
            return _invalid_type(f"{where}.{body_key}.name", "a string", name)
        if len(name) > 64:
            return Invalid(
                f"Invalid '{where}.{body_key}.name': string too long. Expected a string with maximum "
                f"length 64, but got a string with length {len(name)} instead.",
                f"{where}.{body_key}.name",
                "string_above_max_length",
            )
        if not _NAME.match(name):
            return Invalid(
                f"Invalid '{where}.{body_key}.name': string does not match pattern. Expected a string "
                "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.{body_key}.name",
                "invalid_value",
            )
        if body_key != "function" or "parameters" not in body:
            continue
        parameters = body["parameters"]
        param = f"{where}.function.parameters"
        if not isinstance(parameters, dict):
            return _invalid_type(param, "an object", parameters)
        kind = parameters.get("type", "object")
        if kind != "object":
            return Invalid(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: "
                f'"object"\', got \'type: "{kind}"\'.',
                param,
                "invalid_function_parameters",
            )
        if "properties" in parameters and not isinstance(parameters["properties"], dict):
            return Invalid(
                f"Invalid schema for function '{name}': In context=(), 'properties' must be an object.",
                param,
                "invalid_function_parameters",
            )
        if body.get("strict") is True:
            problem = _strict_problem({"type": "object", **parameters})
            if problem:
                return Invalid(f"Invalid schema for function '{name}': {problem}", param, "invalid_function_parameters")
    return None


def function_names(tools: list[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools if t.get("type") == "function"]


def check_tool_choice(choice: Any, tools: Any, parallel: Any) -> Invalid | None:
    """`tool_choice` / `parallel_tool_calls` need tools; a named function must be one of them."""
    if choice is not None and tools is None:
        return Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice"
        )
    if parallel is not None and tools is None:
        return Invalid(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' "
            "are specified.",
            "parallel_tool_calls",
        )
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            return Invalid(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
                "invalid_value",
            )
        return None
    if not isinstance(choice, dict):
        return _invalid_type("tool_choice", "an object", choice)
    names = function_names(tools)
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            return _missing("tool_choice.function.name")
        if name not in names:
            return Invalid(
                f"Invalid value for 'tool_choice': function '{name}' was not found in 'tools'.",
                "tool_choice.function.name",
                "invalid_value",
            )
        return None
    if choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict):
            return _invalid_type("tool_choice.allowed_tools", "an object", allowed)
        if allowed.get("mode") not in ("auto", "required"):
            return Invalid(
                f"Invalid value: '{allowed.get('mode')}'. Supported values are: 'auto' and 'required'.",
                "tool_choice.allowed_tools.mode",
                "invalid_value",
            )
        for index, tool in enumerate(allowed.get("tools") or []):
            name = ((tool or {}).get("function") or {}).get("name")
            if name not in names:
                return Invalid(
                    f"Invalid value for 'tool_choice': function '{name}' was not found in 'tools'.",
                    f"tool_choice.allowed_tools.tools[{index}]",
                    "invalid_value",
                )
        return None
    return Invalid(
        f"Invalid value: '{choice.get('type')}'. Supported values are: 'function', 'allowed_tools' and 'custom'.",
        "tool_choice.type",
        "invalid_value",
    )


def check_tool_messages(messages: list[Any]) -> Invalid | None:
    """Every `tool` message answers a call of the assistant message just before its run of tool messages, and
    every call of an assistant message is answered before the conversation goes on."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            continue
        if "tool_call_id" not in message:
            return _missing(f"messages[{index}].tool_call_id")
        previous = index - 1
        while previous >= 0 and isinstance(messages[previous], dict) and messages[previous].get("role") == "tool":
            previous -= 1
        owner = messages[previous] if previous >= 0 else None
        calls = owner.get("tool_calls") if isinstance(owner, dict) and owner.get("role") == "assistant" else None
        if not calls:
            return Invalid(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                "with 'tool_calls'.",
                f"messages.[{index}].role",
            )
        if message["tool_call_id"] not in [c.get("id") for c in calls if isinstance(c, dict)]:
            return Invalid(
                f"Invalid parameter: 'tool_call_id' of '{message['tool_call_id']}' not found in "
                "'tool_calls' of previous message.",
                f"messages.[{index}].tool_call_id",
            )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant" or not message.get("tool_calls"):
            continue
        answered = set()
        following = index + 1
        while (
            following < len(messages)
            and isinstance(messages[following], dict)
            and (messages[following].get("role") == "tool")
        ):
            answered.add(messages[following].get("tool_call_id"))
            following += 1
        missing = [c.get("id") for c in message["tool_calls"] if isinstance(c, dict) and c.get("id") not in answered]
        if missing:
            return Invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(str(m) for m in missing),
                f"messages.[{index}].role",
            )
    return None


def answered_calls(messages: list[dict[str, Any]], text_of: Any) -> list[ToolResult]:
    """The trailing run of tool messages, each paired with the call it answers (None if they do not trail)."""
    results: list[ToolResult] = []
    index = len(messages) - 1
    while index >= 0 and messages[index].get("role") == "tool":
        index -= 1
    if index == len(messages) - 1 or index < 0:
        return results
    calls = {c.get("id"): c for c in messages[index].get("tool_calls") or [] if isinstance(c, dict)}
    for message in messages[index + 1 :]:
        call = calls.get(message.get("tool_call_id"), {})
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        results.append(
            ToolResult(
                str(function.get("name", "tool")),
                arguments if isinstance(arguments, dict) else {},
                text_of(message.get("content")),
            )
        )
    return results
