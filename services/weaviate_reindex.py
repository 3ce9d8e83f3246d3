"""Raw operations on one physical collection, by name, for a reindex: count it, read every
object with its properties as stored, write objects back unchanged but for the vector, delete
by id. No access filter applies here: these run in the operator's ``holdfast reindex`` process,
never on a caller's behalf."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter

from services.records import StoredChunk
from services.weaviate_common import WeaviateClient, chunk_from, inserted, translated

ID_SLICE = 1000  # ids per delete request: well under Weaviate's cap of objects per delete


class RawCollections:
    """Physical collections addressed by name (the alias is not involved)."""

    def __init__(self, client: WeaviateClient) -> None:
        self._client = client

    def count_in(self, name: str) -> int:
        with translated("count"):
            total = self._client.reading(name).aggregate.over_all(total_count=True)
        return int(total.total_count or 0)

    def scan(self, name: str, *, page_size: int) -> Iterator[StoredChunk]:
        """Every object of collection ``name``, with the client's cursor iterator (no offset
        limit, constant memory)."""
        collection = self._client.reading(name)
        with translated("scan"):
            for obj in collection.iterator(cache_size=page_size):
                props = dict(obj.properties)
                yield StoredChunk(str(obj.uuid), props, chunk_from(props))

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        """Write (uuid, properties, vector) rows as they are into collection ``name`` (a reindex
        keeps every id and property; only the vector is new)."""
        if not rows:
            return 0
        objects = [
            DataObject(properties=props, uuid=uuid, vector=list(vector))
            for uuid, props, vector in rows
        ]
        with translated("insert"):
            result = self._client.writing(name).data.insert_many(objects)
        return inserted(result, len(objects))

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects of collection ``name`` by uuid, a slice at a time (one filtered delete
        removes at most QUERY_MAXIMUM_RESULTS objects)."""
        wanted = list(dict.fromkeys(uuids))
        collection = self._client.writing(name)
        deleted = 0
        for start in range(0, len(wanted), ID_SLICE):
            with translated("delete"):
                result = collection.data.delete_many(
                    where=Filter.by_id().contains_any(wanted[start : start + ID_SLICE])
                )
            deleted += int(result.successful)
        return deleted
