"""``holdfast images``: build the OCI images (gateway, Weaviate, Ollama, models; vLLM for GPU
nodes with --gpu) offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gateway.images import spec
from gateway.images.build import BuildOptions, build
from gateway.images.spec import ImagesError

images_app = typer.Typer(
    help="Build the container images (OCI archives) from Debian packages, no Docker daemon.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)
REPO_ROOT = Path(__file__).resolve().parents[2]


@images_app.command("build")
def build_images(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the archives, SBOMs and images.json.")
    ] = REPO_ROOT / "dist" / "images",
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help=f"Build only these (repeat): {', '.join(spec.ALL_IMAGES)}. Default: every"
            f" image but {', '.join(spec.GPU_IMAGES)} (GPU nodes: add --gpu).",
        ),
    ] = None,
    gpu: Annotated[
        bool,
        typer.Option(
            "--gpu",
            help=f"Also build the GPU images ({', '.join(spec.GPU_IMAGES)}: vLLM with its CUDA"
            " wheels, about 4.4 GB compressed), for clusters with llm.engine or"
            " embeddings.engine vllm.",
        ),
    ] = False,
    download: Annotated[
        bool, typer.Option(help="Fetch missing wheels; --no-download uses the cache only.")
    ] = True,
    revision: Annotated[
        str, typer.Option(help="The commit to build (git archive of it); labels name it.")
    ] = "HEAD",
    keep_layout: Annotated[
        bool, typer.Option(help="Also keep the shared OCI layout as OUT/oci (for skopeo).")
    ] = False,
) -> None:
    """Build the images from a committed tree (HEAD); same commit, same digests."""
    started = time.monotonic()

    def say(step: str, detail: str) -> None:
        elapsed = time.monotonic() - started
        out.print(f"[{elapsed:6.1f}s] {step}: {detail}", highlight=False, soft_wrap=True)
        out.file.flush()

    opts = BuildOptions(
        repo_root=REPO_ROOT,
        out_dir=out_dir,
        images=(*(only or spec.IMAGES), *(spec.GPU_IMAGES if gpu else ())),
        download=download,
        keep_layout=keep_layout,
        revision=revision,
    )
    try:
        result = build(opts, say)
    except ImagesError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    out.print(f"built {len(result.images)} images in {result.seconds:.0f} s into {out_dir}:")
    for image in result.images:
        out.print(
            f"  {image.name}:{image.tag}  {image.digest}  {image.size_bytes / 1e6:.0f} MB"
            f"  {image.archive}",
            highlight=False,
            soft_wrap=True,
        )
