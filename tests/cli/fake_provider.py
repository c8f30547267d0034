"""A fake OpenAI-compatible provider on 127.0.0.1 for the CLI's LLM commands."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(content: str) -> dict[str, Any]:
    """A chat-completions response in OpenAI's documented format."""
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 1764300000,
        "model": "local-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


class FakeProvider:
    """Answers POST /v1/chat/completions from a queue of (status, body); records requests."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                provider.requests.append(
                    {"path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")}
                )
                status, body = (
                    provider.replies.pop(0)
                    if provider.replies
                    else (500, {"error": {"message": "no reply queued", "type": "server_error"}})
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, content: str) -> None:
        self.replies.append((200, completion(content)))
