"""What a valid training example looks like, per dataset format, and what it costs in tokens.

``check(fmt, example, counter)`` takes one parsed JSONL line and returns its problems as
``(code, message)`` pairs plus its token count (``None`` when the example has errors). The codes are
stable: they appear in ``--json`` output and in tests.

Formats: ``chat`` (supervised: ``messages``, optional ``tools``/``functions``), ``preference``
(DPO: ``input.messages``, ``preferred_output``, ``non_preferred_output``) and ``reinforcement``
(``messages`` to prompt with, plus any reference fields the grader reads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ftops.errors import did_you_mean
from ftops.tokens import TokenCounter

FORMATS = ("chat", "preference", "reinforcement")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")

_COMMON_KEYS = frozenset({"role", "content", "name"})
_KEYS_BY_ROLE = {
    "system": _COMMON_KEYS,
    "developer": _COMMON_KEYS,
    "user": _COMMON_KEYS,
    "assistant": _COMMON_KEYS | {"weight", "tool_calls", "function_call"},
    "tool": _COMMON_KEYS | {"tool_call_id"},
    "function": _COMMON_KEYS,
}
_ALL_KEYS = frozenset().union(*_KEYS_BY_ROLE.values())
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})
# On any other role these get their specific code rather than "unrecognized key".
_ASSISTANT_ONLY = {
    "weight": "invalid_weight",
    "tool_calls": "invalid_tool_call",
    "function_call": "invalid_tool_call",
}

Problems = list[tuple[str, str]]


def kind_of(value: Any) -> str:
    """'an object', 'a list', 'null', ... for messages about a JSON value of the wrong type."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


class _Conversation:
    """Checks one list of messages, remembering the calls made so replies can be matched."""

    def __init__(
        self,
        problems: Problems,
        tool_names: set[str] | None,
        function_names: set[str] | None,
        calls: set[str] | None = None,
        called: set[str] | None = None,
    ) -> None:
        self.problems = problems
        self.tool_names = tool_names
        self.function_names = function_names
        self.calls = set(calls or ())  # tool_call ids made so far
        self.called = set(called or ())  # legacy function names called so far

    def fork(self) -> _Conversation:
        """A continuation (a preference output) that sees the calls made in the input."""
        return _Conversation(
            self.problems, self.tool_names, self.function_names, self.calls, self.called
        )

    def add(self, code: str, message: str) -> None:
        self.problems.append((code, message))

    def messages(self, messages: list[Any], label: str, roles: tuple[str, ...] = ROLES) -> bool:
        """Checks each message; returns whether one is, or may have been meant as, the assistant.

        A message whose role cannot be read already has an error; "no assistant message" on top of
        a misspelt 'assitant' would only be noise.
        """
        assistant = False
        plain = _PLAIN_ROLES if roles is ROLES else _PLAIN_ROLES.intersection(roles)
        for number, message in enumerate(messages, 1):
            # Fast path for the common {"role": ..., "content": "..."}: nothing to check further.
            if (
                type(message) is dict
                and len(message) == 2
                and type(said := message.get("role")) is str
                and said in plain
                and type(content := message.get("content")) is str
                and content
            ):
                assistant = assistant or said == "assistant"
                continue
            where = f"{label} {number}"
            if not isinstance(message, dict):
                self.add("message_not_dict", f"{where} is {kind_of(message)}, not an object")
                assistant = True
                continue
            role = self._role(message, where, roles)
            assistant = assistant or role in (None, "assistant")
            if role is not None:
                self._message(message, role, f"{where} ({role})")
        return assistant

    def _role(self, message: dict[str, Any], where: str, roles: tuple[str, ...]) -> str | None:
        role = message.get("role")
        expected = f"expected {'one of ' if len(roles) > 1 else ''}{', '.join(roles)}"
        if role is None:
            self.add("missing_role", f"{where} has no 'role'; {expected}")
            return None
        if role not in roles:
            hint = did_you_mean(role, roles) if isinstance(role, str) else ""
            self.add("unrecognized_role", f"{where} has role {json.dumps(role)}{hint}; {expected}")
            return None
        return str(role)

    def _message(self, message: dict[str, Any], role: str, where: str) -> None:
        allowed = _KEYS_BY_ROLE[role]
        if not message.keys() <= allowed:
            for key in sorted(message.keys() - allowed):
                if key in _ASSISTANT_ONLY:
                    self.add(_ASSISTANT_ONLY[key], f"{where} has '{key}', which only assistant "
                             "messages may have")
                else:
                    self.add(
                        "unrecognized_key_in_message",
                        f"{where} has unrecognized key '{key}'{did_you_mean(key, _ALL_KEYS)}; "
                        f"allowed: {', '.join(sorted(allowed))}",
                    )
        if "name" in message and not isinstance(message["name"], str):
            self.add("content_not_string", f"{where} 'name' is {kind_of(message['name'])}; "
                     "expected a string")
        calls = role == "assistant" and self._calls(message, where)
        self._content(message, role, where, calls)
        if role == "assistant":
            self._weight(message, where)
        elif role == "tool":
            self._tool_reply(message, where)
        elif role == "function" and not (
            isinstance(name := message.get("name"), str) and name in self.called
        ):
            self.add("tool_reply_without_call", f"{where} answers function "
                     f"{json.dumps(message.get('name'))} but no earlier assistant message "
                     "called it")

    def _weight(self, message: dict[str, Any], where: str) -> None:
        if "weight" not in message:
            return
        weight = message["weight"]
        if type(weight) is not int or weight not in (0, 1):
            self.add("invalid_weight", f"{where} has weight {json.dumps(weight)}; expected 0 "
                     "(do not train on this message) or 1")

    def _content(self, message: dict[str, Any], role: str, where: str, calls: bool) -> None:
        content = message.get("content")
        if content is None or content == "" or content == []:
            if not calls:
                state = "no 'content'" if "content" not in message else "empty content"
                needs = " and no tool_calls" if role == "assistant" else ""
                self.add("missing_content", f"{where} has {state}{needs}")
        elif isinstance(content, list):
            for number, part in enumerate(content, 1):
                self._part(part, role, f"{where} content part {number}")
        elif not isinstance(content, str):
            self.add("content_not_string", f"{where} content is {kind_of(content)}; "
                     "expected a string or a list of text/image_url parts")

    def _part(self, part: Any, role: str, where: str) -> None:
        if not isinstance(part, dict):
            self.add("content_not_string", f"{where} is {kind_of(part)}, not an object")
            return
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                self.add("content_not_string", f"{where} has no 'text' string")
        elif kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                self.add("content_not_string", f"{where} needs \"image_url\": {{\"url\": ...}}")
            elif role != "user":
                self.add("content_not_string", f"{where} is an image; images are only allowed "
                         "in user messages")
        else:
            self.add("content_not_string", f"{where} has type {json.dumps(kind)}; "
                     "expected 'text' or 'image_url'")

    def _calls(self, message: dict[str, Any], where: str) -> bool:
        """Checks tool_calls and function_call; returns whether the message makes a call."""
        made = False
        if "tool_calls" in message:
            tool_calls = message["tool_calls"]
            if not isinstance(tool_calls, list) or not tool_calls:
                self.add("invalid_tool_call", f"{where} tool_calls is {kind_of(tool_calls)}; "
                         "expected a non-empty list")
            else:
                made = True
                for number, call in enumerate(tool_calls, 1):
                    self._tool_call(call, f"{where} tool call {number}")
        if message.get("function_call") is not None:
            made = True
            call = message["function_call"]
            if self._function(call, f"{where} function_call", self.function_names):
                self.called.add(call["name"])
        return made

    def _tool_call(self, call: Any, where: str) -> None:
        if not isinstance(call, dict):
            self.add("invalid_tool_call", f"{where} is {kind_of(call)}, not an object")
            return
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            self.add("invalid_tool_call", f"{where} has no 'id' string")
        else:
            self.calls.add(call_id)
        if call.get("type", "function") != "function":
            self.add("invalid_tool_call", f"{where} has type {json.dumps(call.get('type'))}; "
                     "expected 'function'")
        self._function(call.get("function"), f"{where} function", self.tool_names)

    def _function(self, function: Any, where: str, declared: set[str] | None) -> bool:
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            self.add("invalid_tool_call", f"{where} needs {{\"name\": ..., \"arguments\": ...}}")
            return False
        name, arguments = function["name"], function.get("arguments")
        if declared is not None and name not in declared:
            hint = did_you_mean(name, declared)
            self.add("invalid_tool_call", f"{where} calls '{name}'{hint}, which the example's "
                     "tools do not declare")
        if not isinstance(arguments, str):
            self.add("invalid_tool_call", f"{where} arguments is {kind_of(arguments)}; "
                     "expected a JSON string")
            return False
        try:
            json.loads(arguments)
        except ValueError:
            self.add("invalid_tool_call", f"{where} arguments is not valid JSON: "
                     f"{arguments[:40]!r}")
            return False
        return True

    def _tool_reply(self, message: dict[str, Any], where: str) -> None:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            self.add("tool_reply_without_call", f"{where} has no 'tool_call_id' string")
        elif call_id not in self.calls:
            self.add("tool_reply_without_call", f"{where} answers tool_call_id '{call_id}' but no "
                     "earlier assistant message made that call")


def _declared(example: dict[str, Any], problems: Problems) -> tuple[set[str] | None, ...]:
    """Function names declared by ``tools`` and ``functions`` (None when the key is absent)."""
    tools = example.get("tools")
    tool_names: set[str] | None = None
    if tools is not None:
        tool_names = set()
        if not isinstance(tools, list):
            problems.append(("invalid_tool_call", f"tools is {kind_of(tools)}; expected a list"))
            tools = []
        for number, tool in enumerate(tools, 1):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(function, dict)
                or not isinstance(function.get("name"), str)
                or tool.get("type", "function") != "function"
            ):
                problems.append(("invalid_tool_call", f"tools item {number} needs "
                                 "{\"type\": \"function\", \"function\": {\"name\": ...}}"))
            else:
                tool_names.add(function["name"])
    functions = example.get("functions")
    function_names: set[str] | None = None
    if functions is not None:
        function_names = set()
        if not isinstance(functions, list):
            problems.append(("invalid_tool_call", f"functions is {kind_of(functions)}; "
                             "expected a list"))
            functions = []
        for number, function in enumerate(functions, 1):
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                problems.append(("invalid_tool_call", f"functions item {number} needs a 'name'"))
            else:
                function_names.add(function["name"])
    return tool_names, function_names


def _messages(container: dict[str, Any], problems: Problems, where: str) -> list[Any] | None:
    messages = container.get("messages")
    if messages is None or messages == []:
        state = "no" if messages is None else "an empty"
        legacy = " (prompt/completion is the legacy format)" if "prompt" in container else ""
        problems.append(("missing_messages", f"{where} has {state} 'messages' list{legacy}"))
        return None
    if not isinstance(messages, list):
        problems.append(("messages_not_list", f"{where} 'messages' is {kind_of(messages)}; "
                         "expected a list of message objects"))
        return None
    return messages


def _chat(example: dict[str, Any], counter: TokenCounter) -> tuple[Problems, int | None]:
    problems: Problems = []
    tool_names, function_names = _declared(example, problems)
    messages = _messages(example, problems, "example")
    if messages is None:
        return problems, None
    conversation = _Conversation(problems, tool_names, function_names)
    if not conversation.messages(messages, "message"):
        problems.append(("no_assistant_message", "example has no assistant message to learn from"))
    if problems:
        return problems, None
    return problems, counter.messages(
        messages, tools=example.get("tools"), functions=example.get("functions")
    )


def _reinforcement(example: dict[str, Any], counter: TokenCounter) -> tuple[Problems, int | None]:
    problems: Problems = []
    tool_names, _ = _declared(example, problems)
    messages = _messages(example, problems, "example")
    if messages is None:
        return problems, None
    _Conversation(problems, tool_names, None).messages(messages, "message")
    if problems:
        return problems, None
    return problems, counter.messages(messages, tools=example.get("tools"))


_OUTPUTS = (
    ("preferred_output", "missing_preferred_output"),
    ("non_preferred_output", "missing_non_preferred_output"),
)


def _preference(example: dict[str, Any], counter: TokenCounter) -> tuple[Problems, int | None]:
    problems: Problems = []
    given = example.get("input")
    messages: list[Any] | None = None
    tools: Any = None
    conversation = _Conversation(problems, None, None)
    if not isinstance(given, dict):
        state = "no 'input'" if given is None else f"'input' that is {kind_of(given)}"
        problems.append(("missing_input", f"example has {state}; expected "
                         "{\"messages\": [...]} with the prompt"))
    else:
        tools = given.get("tools")
        tool_names, _ = _declared(given, problems)
        conversation = _Conversation(problems, tool_names, None)
        messages = _messages(given, problems, "input")
        if messages is not None:
            conversation.messages(messages, "input message")
    outputs: list[list[Any]] = []
    for key, code in _OUTPUTS:
        output = example.get(key)
        if not isinstance(output, list) or not output:
            found = f"has no '{key}'" if output is None else f"'{key}' is {kind_of(output)}"
            problems.append((code, f"example {found}; expected a non-empty list with the "
                             "assistant's reply"))
            continue
        # Each answer continues the prompt, so it may answer the calls the prompt made.
        if not conversation.fork().messages(output, f"{key} message", ("assistant",)):
            problems.append(("no_assistant_message", f"{key} has no assistant message"))
        outputs.append(output)
    if problems or messages is None:
        return problems, None
    # The model reads the prompt twice: once before each of the two answers.
    return problems, sum(counter.messages(messages + output, tools=tools) for output in outputs)


_CHECKS: dict[str, Callable[[dict[str, Any], TokenCounter], tuple[Problems, int | None]]] = {
    "chat": _chat,
    "preference": _preference,
    "reinforcement": _reinforcement,
}


def check(fmt: str, example: dict[str, Any], counter: TokenCounter) -> tuple[Problems, int | None]:
    """Problems of one example (a parsed JSON object) and its tokens when it has none."""
    return _CHECKS[fmt](example, counter)
