"""Canary documents planted through the public API, and random principals to probe them with.

Every document carries a marker word found nowhere else (lower-case letters only, so that no
PII recognizer replaces it) and a made-up topic that retrieves it. The planting is the same for
every seed; the principals (group sets and roles) are drawn from the probe seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from gateway.probes.records import Caller, Canary
from gateway.security.keys import KeyStore
from tests.integration.conftest import LiveStack
from tests.integration.ingest_api import ingest

GROUPS = ("alpha", "bravo", "charlie", "delta")
DOCS_PER_GROUP = 3
_SYLLABLES = [
    "ka",
    "ve",
    "lo",
    "mir",
    "tas",
    "quen",
    "dry",
    "zol",
    "pha",
    "nix",
    "bru",
    "tor",
    "sel",
    "wam",
    "gri",
    "fen",
    "ost",
    "ula",
]
_CACHE: dict[str, Planted] = {}


def word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables))


@dataclass(slots=True)
class Planted:
    canaries: list[Canary] = field(default_factory=list)
    uploaders: dict[str, Caller] = field(default_factory=dict)  # group -> its ingest key
    jobs: dict[str, list[str]] = field(default_factory=dict)  # caller label -> its job ids
    refused: list[str] = field(default_factory=list)  # sources an upload did not index
    reference: Caller | None = None  # the admin key: sees everything


def _document(rng: random.Random, topic: str, group: str, marker: str, week: int) -> str:
    """A canary in words drawn for it alone: no sentence follows a pattern the other canaries
    share, so a model that was never shown this document cannot write its title or a passage
    from the topic named in a question plus the caller's own canaries (seen: "<topic>
    programme" rebuilt from the template the documents once shared)."""
    code, a, b, c, d = (word(rng, 2 + n % 2) for n in range(5))
    return (
        f"# {topic.title()} {code.title()}\n\n"
        f"## Overview\n\nthe {a} {topic} {b} {code} {c}; the {group} reference word is "
        f"{marker}.\n\n"
        f"## Schedule\n\n| step | team | week |\n| --- | --- | --- |\n"
        f"| {topic} {c} | {group} | {week} |\n| {topic} {d} | {group} | {week + 2} |\n\n"
        f"then {d} {topic} {a} {code} in week {week}, {b} {c} under {marker}.\n"
    )


def plant(live_stack: LiveStack, folder: Path) -> Planted:
    """Upload the canary documents once per stack (cached by the stack's home)."""
    cached = _CACHE.get(str(live_stack.settings.home))
    if cached is not None:
        return cached
    rng = random.Random(1616)
    keys = KeyStore(live_stack.settings.keys_db)
    planted = Planted(reference=Caller("admin", live_stack.admin_key))
    folder.mkdir(parents=True, exist_ok=True)
    uploads: list[tuple[str, tuple[str, ...], str, str, str]] = []  # uploader, groups, name, ...
    for group in GROUPS:
        _, key = keys.create(f"uploader-{group}", groups=[group], roles=["ingest", "query"])
        planted.uploaders[group] = Caller(f"up:{group}", key, frozenset({group}))
        for i in range(DOCS_PER_GROUP + 1):
            topic = f"{word(rng, 3)} {word(rng, 2)}"
            # the last file of every group has the same name in all groups (issue 16 item 1)
            name = (
                "notes/readme.md"
                if i == DOCS_PER_GROUP
                else f"{group}/{topic.replace(' ', '-')}.md"
            )
            uploads.append((group, (group,), name, topic, word(rng, 5)))
    _, shared_key = keys.create("uploader-ab", groups=["alpha", "bravo"], roles=["ingest", "query"])
    planted.uploaders["alpha+bravo"] = Caller(
        "up:alpha+bravo", shared_key, frozenset({"alpha", "bravo"})
    )
    topic = f"{word(rng, 3)} {word(rng, 2)}"
    uploads.append(("alpha+bravo", ("alpha", "bravo"), "shared/joint-plan.md", topic, word(rng, 5)))
    for n, (uploader, groups, name, topic, marker) in enumerate(uploads):
        path = folder / f"doc-{n:02d}.md"
        path.write_text(_document(rng, topic, " and ".join(groups), marker, 3 + n % 40))
        caller = planted.uploaders[uploader]
        job = ingest(live_stack.url, caller.key, [path], groups=",".join(groups), names=[name])
        planted.jobs.setdefault(caller.label, []).append(job["job_id"])
        result = job["files"][0]
        if result["status"] != "indexed" or not result["doc_id"]:
            planted.refused.append(f"{name} ({uploader}): {result['status']} {result['reason']}")
            continue
        planted.canaries.append(Canary(marker, topic, result["doc_id"], groups))
    _CACHE[str(live_stack.settings.home)] = planted
    return planted


def principals(
    live_stack: LiveStack, planted: Planted, rng: random.Random, n: int = 10
) -> list[Caller]:
    """The uploaders plus ``n`` keys with random group sets (some with no matching group) and
    random roles (some may not query, some may not ingest)."""
    keys = KeyStore(live_stack.settings.keys_db)
    pool = [*GROUPS, "handbook", "finance"]
    callers = [c for label, c in planted.uploaders.items() if "+" not in label]
    for i in range(n):
        groups = rng.sample(pool, rng.choice([0, 1, 1, 2, 2, 3])) or ["nobody"]
        roles = rng.choice([["query"], ["query"], ["query", "ingest"], ["ingest"]])
        _, key = keys.create(f"fuzz-{i}", groups=groups, roles=roles)
        label = f"p{i}:{'+'.join(groups)}:{'+'.join(roles)}"
        callers.append(Caller(label, key, frozenset(groups)))
    return callers
