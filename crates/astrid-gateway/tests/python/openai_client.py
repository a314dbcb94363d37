"""The official OpenAI Python client against the Astrid gateway: one plain and one streamed
tool-using turn. Run by crates/astrid-daemon/tests/gateway.rs with OPENAI_BASE_URL,
OPENAI_API_KEY (a device token) and EXPECT_ANSWER set; prints one line per passed check."""

import os
import sys

from openai import OpenAI

expected = os.environ["EXPECT_ANSWER"]
client = OpenAI(max_retries=0, timeout=300)
question = [{"role": "user", "content": "What do my notes say?"}]

plain = client.chat.completions.create(model="gpt-4o-mini", messages=question)
answer = plain.choices[0].message.content
if answer != expected or plain.choices[0].finish_reason != "stop":
    sys.exit(f"plain: unexpected completion {plain!r}")
print("plain ok")

stream = client.chat.completions.create(model="gpt-4o-mini", messages=question, stream=True)
pieces = []
finish = None
for chunk in stream:
    if not chunk.choices:
        continue
    choice = chunk.choices[0]
    if choice.delta.content:
        pieces.append(choice.delta.content)
    if choice.finish_reason:
        finish = choice.finish_reason
if "".join(pieces) != expected or finish != "stop":
    sys.exit(f"stream: got {''.join(pieces)!r} finish {finish!r}")
print("stream ok")
