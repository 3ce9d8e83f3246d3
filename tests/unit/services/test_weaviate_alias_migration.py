"""Creating the alias over a pre-alias collection (``VersionedCollections``): once that
collection is deleted its chunks live only in the new one, so a failed alias creation names it,
and a start finding them without an alias refuses rather than hiding them behind a new empty
collection. Pure logic: Weaviate's schema calls are stand-ins; the real migration runs in
tests/integration/test_reindex."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from weaviate.exceptions import WeaviateBaseError

from services.errors import ConfigError
from services.weaviate_versions import AliasNotCreatedError, VersionedCollections

pytestmark = pytest.mark.unit
ALIAS = "Chunks"


class SchemaCalls:
    """Collections (name -> how many objects) and the alias; ``refuse_alias`` makes creating
    the alias fail as Weaviate does."""

    def __init__(self, **collections: int) -> None:
        self.objects = dict(collections)
        self.target: str | None = None
        self.refuse_alias = False
        self.connection = SimpleNamespace(collection=ALIAS, collection_options=dict)
        self.live = SimpleNamespace(
            collections=SimpleNamespace(
                exists=lambda name: name in self.objects,
                delete=self.objects.pop,
                list_all=lambda simple: {n: SimpleNamespace(description="") for n in self.objects},
                create=lambda name, **config: self.objects.setdefault(name, 0),
            ),
            alias=SimpleNamespace(get=self._get_alias, create=self._create_alias),
        )

    def _get_alias(self, alias_name: str) -> Any:
        return None if self.target is None else SimpleNamespace(collection=self.target)

    def _create_alias(self, alias_name: str, target_collection: str) -> None:
        if self.refuse_alias or alias_name in self.objects:
            raise WeaviateBaseError("alias refused")
        self.target = target_collection

    def reading(self, name: str) -> Any:
        count = self.objects[self.target if name == ALIAS and self.target else name]
        return SimpleNamespace(
            query=SimpleNamespace(
                fetch_objects=lambda limit: SimpleNamespace(objects=[{}] * min(limit, count))
            )
        )


def _versions(weaviate: SchemaCalls) -> VersionedCollections:
    client: Any = weaviate
    return VersionedCollections(client, route_ttl_s=0)


def test_the_alias_replaces_a_pre_alias_collection_of_its_name() -> None:
    weaviate = SchemaCalls(Chunks=3, Chunks_1=3)
    assert _versions(weaviate).point_alias("Chunks_1") is None
    assert weaviate.target == "Chunks_1" and ALIAS not in weaviate.objects


def test_a_failed_alias_after_the_delete_names_the_collection_holding_the_chunks() -> None:
    weaviate = SchemaCalls(Chunks=3, Chunks_1=3)
    weaviate.refuse_alias = True
    with pytest.raises(AliasNotCreatedError, match='"class": "Chunks_1"') as raised:
        _versions(weaviate).point_alias("Chunks_1")
    assert "pre-alias collection Chunks are now only in Chunks_1" in str(raised.value)


def test_a_start_without_the_alias_refuses_to_hide_copied_chunks_behind_an_empty_one() -> None:
    weaviate = SchemaCalls(Chunks_1=3)  # the migration deleted Chunks, then the alias failed
    with pytest.raises(ConfigError, match="Chunks_1 holds chunks"):
        _versions(weaviate).ensure_schema(embedding_model="m", dimensions=2)
    assert set(weaviate.objects) == {"Chunks_1"} and weaviate.target is None


def test_a_start_beside_an_empty_collection_of_a_concurrent_start_goes_on() -> None:
    weaviate = SchemaCalls(Chunks_1=0)  # another gateway created it and has not aliased it yet
    _versions(weaviate).ensure_schema(embedding_model="m", dimensions=2)
    assert weaviate.target == "Chunks_2"
