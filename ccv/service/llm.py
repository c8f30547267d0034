"""The one LLM adapter: structured completions over litellm (any provider by model string).

Everything above it (gap fill, requirement extraction) talks to the `StructuredModel` protocol,
so tests stand in a fake with queued answers; only this module's tests replay HTTP cassettes.
litellm is imported on the first call, never at import time (`ccv --help` stays light).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from ccv.errors import BackendError, MissingExtraError, UsageError

if TYPE_CHECKING:
    from ccv.config import Settings

T = TypeVar("T", bound=BaseModel)
Message = Mapping[str, str]

# litellm fetches its model price list at import unless told not to (and then keeps retrying in
# a background thread when there is no network).
_LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.S)


class StructuredModel(Protocol):
    """A model that answers a conversation with one JSON object validated as `output`.

    Raises `BackendError` when the provider fails, times out, or answers malformed output
    twice (the second time after being told what was wrong).
    """

    @property
    def name(self) -> str: ...

    def complete(self, messages: Sequence[Message], output: type[T]) -> T: ...


def import_litellm() -> Any:
    """litellm, configured for offline use; `MissingExtraError` without the `llm` extra."""
    for key, value in _LITELLM_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import litellm
    except ImportError:
        raise MissingExtraError("llm", "litellm") from None
    litellm.suppress_debug_info = True  # it prints "Give Feedback" banners on stdout otherwise
    litellm.telemetry = False
    return litellm


def parse_answer(text: str | None, output: type[T]) -> T:
    """The model's text as `output`; `ValueError` saying what is wrong otherwise."""
    if not text or not text.strip():
        raise ValueError("the answer was empty")
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not JSON ({exc.msg} at character {exc.pos})") from None
    try:
        return output.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'answer'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ValueError(f"the answer does not match the schema ({problems})") from None


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class LiteLLMModel:
    """`StructuredModel` over `litellm.completion`.

    `retries` is how many times a provider error (5xx, timeout, connection) is retried; a
    malformed answer is retried exactly once whatever `retries` says.
    """

    model: str
    api_base: str | None = None
    timeout: float = 60.0
    retries: int = 1
    api_key: str | None = None

    @property
    def name(self) -> str:
        return self.model

    @classmethod
    def from_settings(
        cls, settings: Settings, *, model: str | None = None, api_base: str | None = None
    ) -> LiteLLMModel:
        """The model from flags, else CCV_LLM_MODEL / CCV_LLM_API_BASE and friends."""
        chosen = model or settings.llm_model
        if not chosen:
            raise UsageError("give --model (a litellm model string) or set CCV_LLM_MODEL")
        return cls(
            model=chosen,
            api_base=api_base or settings.llm_api_base,
            timeout=settings.llm_timeout_seconds,
            retries=max(0, settings.llm_retries),
        )

    def _key(self) -> str | None:
        if self.api_key:
            return self.api_key
        # A local OpenAI-compatible server (vLLM, Ollama, llama.cpp) needs no key, but the
        # OpenAI client refuses to start without one.
        provider = self.model.split("/", 1)[0] if "/" in self.model else "openai"
        if self.api_base and provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            return "no-key"
        return None

    def _response_format(self, litellm: Any, output: type[BaseModel]) -> dict[str, Any]:
        try:
            schema_ok = bool(litellm.supports_response_schema(model=self.model))
        except Exception:  # noqa: BLE001 - an unknown model simply has no known support
            schema_ok = False
        if schema_ok:
            return {
                "type": "json_schema",
                "json_schema": {
                    "name": output.__name__,
                    "schema": output.model_json_schema(),
                    "strict": False,
                },
            }
        return {"type": "json_object"}

    def _call(self, litellm: Any, messages: list[dict[str, str]], fmt: dict[str, Any]) -> str:
        last: Exception | None = None
        for _attempt in range(self.retries + 1):
            try:
                response = litellm.completion(
                    model=self.model,
                    messages=messages,
                    api_base=self.api_base,
                    api_key=self._key(),
                    timeout=self.timeout,
                    response_format=fmt,
                    temperature=0,
                    drop_params=True,
                    num_retries=0,  # retries are counted here, not in litellm or the SDK
                    max_retries=0,
                )
            except Exception as exc:  # noqa: BLE001 - every provider failure is a backend error
                last = exc
                if not _transient(litellm, exc):
                    break
                continue
            try:
                content = response.choices[0].message.content
            except (AttributeError, IndexError, TypeError):
                content = None
            return str(content) if content is not None else ""
        assert last is not None
        raise BackendError(_describe(litellm, self.model, last)) from last

    def complete(self, messages: Sequence[Message], output: type[T]) -> T:
        litellm = import_litellm()
        conversation = [dict(m) for m in messages]
        fmt = self._response_format(litellm, output)
        text = self._call(litellm, conversation, fmt)
        try:
            return parse_answer(text, output)
        except ValueError as first:
            conversation += [
                {"role": "assistant", "content": text},
                {
                    "role": "user",
                    "content": f"That answer was invalid: {first}. Answer again with only one "
                    "JSON object that matches the schema.",
                },
            ]
        text = self._call(litellm, conversation, fmt)
        try:
            return parse_answer(text, output)
        except ValueError as second:
            raise BackendError(
                f"the LLM {self.model} answered malformed output twice: {second}"
            ) from None


def _transient(litellm: Any, exc: Exception) -> bool:
    transient = (
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.RateLimitError,
    )
    return isinstance(exc, transient)


def _describe(litellm: Any, model: str, exc: Exception) -> str:
    if isinstance(exc, litellm.Timeout):
        return f"the LLM {model} did not answer in time (timeout)"
    status = getattr(exc, "status_code", None)
    detail = _one_line(str(exc).split("Error_str:")[0])
    code = f" (HTTP {status})" if isinstance(status, int) else ""
    return f"the LLM {model} failed{code}: {detail}"


def build_model(
    settings: Settings, *, model: str | None = None, api_base: str | None = None
) -> StructuredModel:
    """The configured model (one place builds it, from Settings and flags)."""
    return LiteLLMModel.from_settings(settings, model=model, api_base=api_base)
