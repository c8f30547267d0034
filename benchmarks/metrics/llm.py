"""The LLM features' own cost, without a provider: prompt sizes and the time around the call.

llm_prompt_tokens: the largest prompt of `requirements extract` over the demo requirement files
and of `profile fill` for a demo transcript, counted with litellm's tokenizer (gpt-4o-mini;
characters / 4 without the `llm` extra). One LLM call per file and per fill, so this is the
whole input.
llm_overhead_ms_per_file: `requirements extract --write` per demo file with a fake model that
answers at once, minus the time inside the fake: parsing, pre-pass, cache, merging, the ruamel
round-trip and the diff. Target < 50 ms per file.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.registry import Measurement, ccv_max, metric

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
REPEATS = 20
TOKEN_MODEL = "gpt-4o-mini"
TRANSCRIPT = [
    {"role": "assistant", "content": "Hello, this is Northwind Bank. How can I help?"},
    {"role": "user", "content": "Hi! I'd like a refund for my order ORD-482913, please."},
    {"role": "assistant", "content": "Of course. How much was charged?"},
    {"role": "user", "content": "It was 129.90, on my card ending 0042."},
    {"role": "assistant", "content": "Thanks. Where should we send the confirmation?"},
    {"role": "user", "content": "To ana.lima@example.com. And I prefer English, thanks."},
]


class _Fake:
    """Answers at once, timing itself so that its time can be taken out."""

    name = "bench/fake"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.inside = 0.0

    def complete(self, messages: Any, output: Any) -> Any:
        started = time.perf_counter()
        parsed = output.model_validate(self.answer)
        self.inside += time.perf_counter() - started
        return parsed


def _tokens(messages: list[dict[str, str]]) -> tuple[int, str]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    try:
        import litellm
    except ImportError:
        return sum(len(m["content"]) for m in messages) // 4, "characters / 4"
    return int(litellm.token_counter(model=TOKEN_MODEL, messages=messages)), TOKEN_MODEL


def _definitions() -> list[Any]:
    from ccv.domain.schema_file import parse_schema
    from ccv.domain.yamldoc import parse_yaml

    found = []
    for path in sorted((DEMO / "schema").glob("*.yaml")):
        definitions, problems = parse_schema(str(path), parse_yaml(path.read_text("utf-8")))
        assert not problems, problems
        found.extend(definitions)
    return found


@metric("llm_prompt_tokens", unit="tokens", target=ccv_max(4000), needs_dataset=False)
def prompt_tokens(ctx: Context) -> Measurement:
    """Largest single LLM prompt (extract per demo file, fill per transcript), in tokens."""
    import yaml

    from ccv.domain.requirements_file import AgentSchema
    from ccv.service.extractor import build_extract_messages
    from ccv.service.fill import build_fill_messages, parse_transcript

    definitions = _definitions()
    sizes: dict[str, int] = {}
    counter = ""
    for path in sorted((DEMO / "requirements").glob("*.yaml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        agent = [d for d in definitions if d.agent == data["agent"]]
        schema = AgentSchema(data["tenant"], data["agent"], agent)
        required = sorted({r["field"] for r in data.get("requires") or []})
        messages = build_extract_messages(data, schema, required)
        sizes[f"extract {path.name}"], counter = _tokens([dict(m) for m in messages])
    support = {d.name: d for d in definitions if d.agent == "support-bot"}
    wanted = ["order_id", "refund_amount", "card_last4", "email", "preferred_language"]
    fill = build_fill_messages([support[n] for n in wanted], parse_transcript(TRANSCRIPT))
    sizes["fill refund-request (5 fields, 6 turns)"], counter = _tokens([dict(m) for m in fill])
    return Measurement(
        ccv=float(max(sizes.values())), raw=None, extra={**sizes, "counted": counter}
    )


@metric("llm_overhead_ms_per_file", unit="ms", target=ccv_max(50), needs_dataset=False)
def overhead_per_file(ctx: Context) -> Measurement:
    """requirements extract --write per demo file with an instant fake model, minus the fake."""
    from ccv.service.extractor import LLMRequirementExtractor

    answer = {
        "requirements": [
            {"field": "phone", "level": "soft", "confidence": 0.7, "quote": "contact"},
            {"field": "address_line", "confidence": 0.9, "quote": "address"},
            {"field": "loyalty_tier", "confidence": 0.9, "quote": "tier"},
        ],
        "definitions": [{"name": "loyalty_tier", "value_type": "string"}],
    }
    files = sorted((DEMO / "requirements").glob("*.yaml"))
    per_file: list[float] = []
    for repeat in range(REPEATS):
        root = ctx.workdir / f"llm-{repeat}"
        shutil.copytree(DEMO / "schema", root / "schema")
        shutil.copytree(DEMO / "requirements", root / "requirements")
        fake = _Fake(answer)
        extractor = LLMRequirementExtractor(fake, schema_paths=[root / "schema"])
        started = time.perf_counter()
        result = extractor.extract([root / "requirements"], write=True)
        elapsed = time.perf_counter() - started - fake.inside
        assert len(result.files) == len(files), json.dumps(result.model_dump())[:200]
        per_file.append(elapsed * 1000 / len(files))
    return Measurement(
        ccv=statistics.median(per_file),
        raw=None,
        extra={"files": len(files), "repeats": REPEATS, "max_ms": round(max(per_file), 3)},
    )
