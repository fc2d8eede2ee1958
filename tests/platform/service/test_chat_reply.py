"""The chat response object is spelled out by hand for speed; it must still carry every field."""

from __future__ import annotations

import dataclasses

from rolescope.inference.base import Usage
from rolescope.service.chat import ChatReply


def test_the_response_dict_has_every_field_of_the_reply_with_its_value() -> None:
    names = [field.name for field in dataclasses.fields(ChatReply) if field.name != "usage"]
    values = {name: f"value-of-{name}" for name in names}
    reply = ChatReply(**values, usage=Usage(input_tokens=3, output_tokens=5))  # type: ignore[arg-type]
    answer = reply.as_dict()
    assert set(answer) == {field.name for field in dataclasses.fields(ChatReply)}
    assert answer["usage"] == {"input_tokens": 3, "output_tokens": 5}
    assert all(answer[name] == value for name, value in values.items())
