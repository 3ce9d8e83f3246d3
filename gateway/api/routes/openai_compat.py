"""OpenAI-compatible surface: existing OpenAI clients get grounded answers by changing base_url.

RAG runs over the conversation's last user message; citations travel in the ``holdfast``
extension field (and, when streaming, in the first chunk's ``holdfast`` field).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import ServerSentEvent

from gateway.api.audit_middleware import audit_context, note_answer, track_events
from gateway.api.deps import ComponentsDep, QueryPrincipalDep
from gateway.api.disconnect import (
    cancellable_event_stream,
    run_unless_disconnected,
)
from gateway.api.routes.query import (
    RetrievalParams,
    chat_model_name,
    options_for,
    ports_of,
    tracer_of_app,
)
from gateway.query.answering import answer_question
from gateway.query.events import stream_answer
from gateway.query.prompt import citation_dict
from gateway.query.records import QueryOptions
from services.cancellation import Cancellation
from services.errors import InvalidRequestError, NotFoundError

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p... accepted, the alias decides
    model: str = Field(description="A chat alias from models.yaml (GET /v1/models).")
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "holdfast"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


@router.get("/models", response_model=ModelList)
async def list_models(_: QueryPrincipalDep, components: ComponentsDep) -> ModelList:
    """The chat aliases a client may name as ``model``."""
    aliases = [e.model_name for e in components.models.model_list if e.model_info.mode == "chat"]
    return ModelList(data=[ModelCard(id=a) for a in aliases])


def _last_user_message(body: ChatCompletionRequest) -> str:
    for message in reversed(body.messages):
        if message.role == "user" and message.text().strip():
            return message.text()
    raise InvalidRequestError("the conversation has no user message")


def _options(body: ChatCompletionRequest, components: Any, question: str) -> QueryOptions:
    chat_aliases = {
        e.model_name for e in components.models.model_list if e.model_info.mode == "chat"
    }
    if body.model not in chat_aliases:
        raise NotFoundError("no chat model alias of that name; GET /v1/models lists them")
    base = options_for(components, RetrievalParams(), question)
    return replace(base, chat_alias=body.model, max_tokens=body.max_tokens)


def _chunk(
    cid: str, model: str, delta: dict[str, Any], finish: str | None, **extra: Any
) -> ServerSentEvent:
    payload = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return ServerSentEvent(json.dumps(payload))


def _openai_stream(
    cid: str, model: str, events: Iterator[tuple[str, dict[str, Any]]]
) -> Iterator[ServerSentEvent]:
    for name, data in events:
        if name == "retrieval":
            yield _chunk(cid, model, {"role": "assistant", "content": ""}, None, holdfast=data)
        elif name == "token":
            yield _chunk(cid, model, {"content": data["text"]}, None)
        elif name == "done":
            yield _chunk(cid, model, {}, "stop", holdfast=data)
        elif name == "error":
            error = {"error": {"message": data["detail"], "type": data["code"]}}
            yield ServerSentEvent(json.dumps(error))
    yield ServerSentEvent("[DONE]")


@router.post("/chat/completions")
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    principal: QueryPrincipalDep,
    components: ComponentsDep,
) -> Any:
    """OpenAI chat completions with retrieval-augmented, cited answers."""
    question = _last_user_message(body)
    options = _options(body, components, question)
    ports = ports_of(components, tracer_of_app(request))
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    audit = audit_context(request.state)
    audit.alias = body.model
    cancel = Cancellation()  # set when the client goes away: the model call then stops
    if body.stream:
        events = await run_unless_disconnected(
            request.receive,
            cancel,
            stream_answer,
            question,
            principal,
            ports=ports,
            options=options,
            model_name=chat_model_name(components, body.model),
            cancel=cancel,
        )
        return cancellable_event_stream(
            _openai_stream(cid, body.model, track_events(events, audit)),
            cancel,
            audit,
            close=events.close,
        )
    answer = await run_unless_disconnected(
        request.receive,
        cancel,
        answer_question,
        question,
        principal,
        ports=ports,
        options=options,
        cancel=cancel,
    )
    note_answer(audit, answer)
    prompt_tokens = answer.usage.get("prompt_tokens", 0)
    completion_tokens = answer.usage.get("completion_tokens", 0)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "holdfast": {
            "citations": [citation_dict(c) for c in answer.citations],
            "retrieval_status": answer.retrieval_status,
            "confidence": answer.confidence,
            "refused": answer.refused,
            "refusal_reason": answer.refusal_reason,
            "unsupported_sentences": answer.unsupported_sentences,
            "attribution": answer.attribution,
            "model": answer.model,
            "redactions": dict(answer.redactions),
        },
    }
