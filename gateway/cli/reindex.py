"""``holdfast reindex``: re-embed every chunk with another embedding model, gate, switch.

Runs in its own process against Weaviate directly, beside a running gateway, which keeps
answering from the live collection throughout; the last re-sync and the alias switch (of a
reindex or a rollback) run behind the installation's write fence (``gateway/models/write_fence``).
See ``gateway/models/reindex.py`` for the procedure.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.cli.common import cli_settings
from gateway.models.audit import ModelAudit
from gateway.models.config import PACKAGED_EMBEDDER, ModelEntry, ModelInfo, ModelsConfig
from gateway.security.secrets import id_key
from gateway.settings import Settings
from ingestion.identity import Identity
from services.errors import HoldfastError

if TYPE_CHECKING:  # the store and models load at run time only: `holdfast --help` stays fast
    from gateway.models.reindex import GateVerdict, ReindexResult
    from gateway.models.reindex_gate import Margins
    from services.ports import Embedder
    from services.records import IndexRecord
    from services.weaviate_store import WeaviateStore

out = Console()
err = Console(stderr=True)
EXIT_GATE_REFUSED = 2


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def model_id(entry: ModelEntry) -> str:
    """The id an index records for an embedding alias (its ``litellm_params.model``)."""
    return str(entry.litellm_params.get("model", entry.model_name))


def live_entry(config: ModelsConfig, recorded_model: str) -> ModelEntry | None:
    """An embedding alias that serves the model the live collection was built with."""
    for entry in config.model_list:
        if entry.model_info.mode == "embedding" and model_id(entry) == recorded_model:
            return entry
    if recorded_model == PACKAGED_EMBEDDER:
        params = {"model": PACKAGED_EMBEDDER, "timeout": 30, "max_retries": 0}
        return ModelEntry(
            model_name="live", litellm_params=params, model_info=ModelInfo(mode="embedding")
        )
    return None


def _warm(embedder: Embedder) -> Embedder:
    warm = getattr(embedder, "warm_up", None)
    if callable(warm):
        warm()
    return embedder


def _scores_table(verdict: GateVerdict, margins: tuple[float, float]) -> Table:
    table = Table(title="golden set, hybrid retrieval @10")
    for column in ("metric", "live", "shadow", "change", "allowed drop"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    allowed = {"ndcg@10": margins[0], "recall@10": margins[1]}
    for name in verdict.live:
        live, shadow = verdict.live[name], verdict.shadow.get(name, 0.0)
        table.add_row(
            name,
            f"{live:.4f}",
            f"{shadow:.4f}",
            f"{shadow - live:+.4f}",
            f"{allowed[name]:.4f}" if name in allowed else "",
        )
    return table


def reindex_command(
    alias: Annotated[
        str | None,
        typer.Option(
            help="Embedding alias to re-embed with (default: generation.embedding_alias)."
        ),
    ] = None,
    golden: Annotated[
        Path | None,
        typer.Option(help="Golden set that gates the cutover (default: reindex.golden_file)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Switch even if the gate refuses (audit-logged).")
    ] = False,
    rollback_: Annotated[
        bool,
        typer.Option("--rollback", help="Point the alias back at the previous collection."),
    ] = False,
    drop_old_: Annotated[
        bool,
        typer.Option("--drop-old", help="Delete every collection but the live one (no reindex)."),
    ] = False,
    show: Annotated[
        bool, typer.Option("--list", help="List the collections and which one is live.")
    ] = False,
) -> None:
    """Re-embed every chunk into a new collection and switch to it without downtime (chunks
    stored with the unkeyed ids of releases before keyed ids move to keyed ones on the way)."""
    settings = cli_settings()
    try:
        code = _run(settings, alias, golden, force, rollback_, drop_old_, show)
    except HoldfastError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


def _run(
    settings: Settings,
    alias: str | None,
    golden: Path | None,
    force: bool,
    rollback_: bool,
    drop_old_: bool,
    show: bool,
) -> int:
    from gateway.container import build_audit_log, build_store
    from gateway.models.config import resolve_models
    from gateway.models.reindex import drop_old, rollback
    from gateway.models.write_fence import write_fence_for

    store = build_store(settings)
    audit = ModelAudit(build_audit_log(settings))  # the shared audit log when there is one
    actor = getpass.getuser()
    try:
        store.warm_up()
        if show:
            _print_collections(store.index_records(), store.alias_target())
            return 0
        if rollback_:
            config = resolve_models(settings)

            def load_embedder(record: IndexRecord) -> Embedder:
                """An embedder for the collection rolled back to (only if chunks were written
                since the switch: they are embedded with its model)."""
                entry = live_entry(config, record.embedding_model)
                if entry is None:
                    raise HoldfastError(
                        f"chunks were written since {record.name} was live; copying them back "
                        f"needs its embedding model {record.embedding_model!r}: add an alias "
                        "for it to models.yaml (any name), then roll back again"
                    )
                from gateway.container import embedder_for

                return _warm(embedder_for(entry))

            back = rollback(
                store,
                load_embedder=load_embedder,
                fence=write_fence_for(settings),
                batch_size=settings.reindex.batch_size,
            )
            audit.record(
                actor=actor,
                trigger="reindex",
                outcome="swapped",
                changes={store.alias: f"{back.source} -> {back.target}"},
                detail=f"rollback: {store.alias} now points at {back.target}; {back.synced} "
                "chunks written or deleted since the switch brought over",
            )
            out.print(
                f"{store.alias} now points at {back.target} (was {back.source}); "
                f"{back.synced} chunks written or deleted meanwhile brought over"
            )
            return 0
        if drop_old_:
            dropped = drop_old(store)
            out.print("dropped: " + (", ".join(dropped) if dropped else "nothing"))
            return 0
        return _reindex(settings, store, audit, actor, alias, golden, force)
    finally:
        store.close()


def _print_collections(records: list[IndexRecord], live: str | None) -> None:
    table = Table()
    for column in ("collection", "embedding model", "dims", "live"):
        table.add_column(column)
    for r in records:
        table.add_row(r.name, r.embedding_model, str(r.dimensions), "yes" if r.name == live else "")
    out.print(table)


def _reindex(
    settings: Settings,
    store: WeaviateStore,
    audit: ModelAudit,
    actor: str,
    alias: str | None,
    golden: Path | None,
    force: bool,
) -> int:
    from gateway.container import embedder_for
    from gateway.evaluation.golden import load_golden
    from gateway.ingest_jobs import job_store
    from gateway.models.config import resolve_models
    from gateway.models.reindex import GateVerdict, plan_source, reindex
    from gateway.models.reindex_gate import Margins, judge, score_collection
    from gateway.models.write_fence import write_fence_for

    config = resolve_models(settings)
    target_alias = alias or settings.generation.embedding_alias
    entry = config.entry(target_alias)
    if entry.model_info.mode != "embedding":
        raise HoldfastError(f"alias {target_alias!r} is not an embedding model")
    new_model = model_id(entry)
    embedder = _warm(embedder_for(entry))
    source = plan_source(store)
    out.print(
        f"re-embedding {source.name} ({source.embedding_model or 'unrecorded'}) with "
        f"{target_alias} = {new_model} ({embedder.dimensions} dims)"
    )
    golden_file = golden or settings.reindex.golden_file
    margins = Margins(settings.reindex.max_drop_ndcg, settings.reindex.max_drop_recall)
    gate = None
    if golden_file is not None:
        questions = load_golden(golden_file)
        old_entry = live_entry(config, source.embedding_model)
        if old_entry is None and not force:
            raise HoldfastError(
                f"cannot evaluate the live collection: no embedding alias in models.yaml serves "
                f"its model {source.embedding_model!r}; add one (any name) or use --force"
            )
        old_embedder = _warm(embedder_for(old_entry)) if old_entry is not None else None

        def gate(live: str, shadow: str, groups: list[str]) -> GateVerdict:
            alpha = settings.retrieval.alpha
            out.print(f"evaluating {len(questions)} golden questions on {live} and {shadow}")
            new = score_collection(store, shadow, embedder, questions, groups=groups, alpha=alpha)
            if old_embedder is None:
                return GateVerdict(live={}, shadow=new, failures=["the live side was not scored"])
            old = score_collection(store, live, old_embedder, questions, groups=groups, alpha=alpha)
            return judge(old, new, margins)

    jobs = job_store(settings)
    with Progress(
        TextColumn("[bold]re-embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        task = progress.add_task("chunks", total=None)
        result = reindex(
            store,
            embedder,
            embedding_model=new_model,
            jobs_busy=jobs.next_runnable,
            gate=gate,
            identity=Identity(id_key(settings)),
            force=force,
            batch_size=settings.reindex.batch_size,
            fence=write_fence_for(settings),
            on_total=lambda total: progress.update(task, total=total),
            on_progress=lambda n: progress.advance(task, n),
        )
    return _report(settings, audit, actor, target_alias, source.embedding_model, result, margins)


def _report(
    settings: Settings,
    audit: ModelAudit,
    actor: str,
    target_alias: str,
    old_model: str,
    result: ReindexResult,
    margins: Margins,
) -> int:
    out.print(
        f"{result.chunks} chunks copied into {result.shadow} in {result.copy_seconds:.1f} s "
        f"({result.seconds:.1f} s with the gate)"
        + (f" ({result.resynced} re-synced after writes)" if result.resynced else "")
        + (f"; {result.rekeyed} moved to keyed ids" if result.rekeyed else "")
    )
    verdict = result.verdict
    if verdict is not None and verdict.live:
        out.print(_scores_table(verdict, (margins.max_drop_ndcg, margins.max_drop_recall)))
    changes = {target_alias: f"{old_model or 'unrecorded'} -> {result.embedding_model}"}
    scores = (
        f"; live {verdict.live} shadow {verdict.shadow}" if verdict is not None else "; no gate"
    )
    if not result.switched:
        assert verdict is not None
        audit.record(
            actor=actor,
            trigger="reindex",
            outcome="rejected",
            changes=changes,
            detail="quality gate: " + "; ".join(verdict.failures) + scores,
        )
        err.print(
            "[bold red]cutover refused:[/] " + "; ".join(verdict.failures) + ". The live "
            f"collection keeps serving; {result.shadow} is kept for inspection. Use --force "
            "to switch anyway.",
            highlight=False,
        )
        return EXIT_GATE_REFUSED
    detail = f"{result.source} -> {result.shadow}, {result.chunks} chunks{scores}"
    if result.forced:
        assert verdict is not None
        detail += "; gate overridden: " + "; ".join(verdict.failures)
    audit.record(
        actor=actor,
        trigger="reindex",
        outcome="forced" if result.forced else "swapped",
        changes=changes,
        detail=detail,
    )
    out.print(
        f"[bold green]switched:[/] {result.shadow} is live"
        + (" [bold yellow](forced past the quality gate)[/]" if result.forced else "")
        + f"; {result.source} is kept (`holdfast reindex --rollback` goes back to it)"
        + (f"; dropped older: {', '.join(result.dropped)}" if result.dropped else "")
    )
    _nudge_gateway(settings, target_alias, result.embedding_model)
    return 0


def _nudge_gateway(settings: Settings, target_alias: str, new_model: str) -> None:
    """Touch models.yaml when it already names the new model for the gateway's embedding alias,
    so a running gateway's file watcher reloads now; otherwise say what to change."""
    from gateway.models.config import resolve_models

    embedding_alias = settings.generation.embedding_alias
    config = resolve_models(settings)
    if model_id(config.entry(embedding_alias)) == new_model and settings.models_path.exists():
        os.utime(settings.models_path)
        out.print(f"models.yaml already maps {embedding_alias} to {new_model}: reload triggered")
    else:
        out.print(
            f"next: point {embedding_alias} at {new_model} in models.yaml (the reload is "
            f"accepted now); until then the gateway reads the previous collection and refuses "
            f"writes. ({target_alias} served the reindex.)"
        )
