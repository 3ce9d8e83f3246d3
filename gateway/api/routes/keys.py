"""Administration of API keys over HTTP: with shared state, a key created on one gateway
authenticates on every other (the key is in the response once; only its hash is stored)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import ComponentsDep, require_role
from gateway.security.keys import Principal

router = APIRouter(prefix="/admin", tags=["admin"])
AdminPrincipalDep = Annotated[Principal, Depends(require_role("admin"))]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Who or what the key is for.")
    groups: list[str] = Field(min_length=1, description="Access groups the key may read.")
    roles: list[str] = Field(["query"], description="query, ingest and/or admin.")


class KeyCreatedOut(BaseModel):
    key_id: str
    key: str = Field(description="The key itself: shown this once, never stored.")


@router.post("/keys", status_code=201, response_model=KeyCreatedOut)
async def create_key(
    body: KeyIn, principal: AdminPrincipalDep, components: ComponentsDep
) -> KeyCreatedOut:
    """Create an API key (the request is audited like every admin call; the key never is)."""
    key_id, key = await run_in_threadpool(
        lambda: components.keys.create(body.name, groups=body.groups, roles=body.roles)
    )
    return KeyCreatedOut(key_id=key_id, key=key)
