"""``holdfast bundle``: build the offline bundle and verify one (a directory or its archive)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gateway.bundle.signing import PUBLIC_KEY_ENV, SIGN_KEY_ENV, SIGN_PASSPHRASE_ENV

bundle_app = typer.Typer(
    help="Build the offline bundle for an air-gapped install, or verify one.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path.home() / ".cache" / "holdfast" / "wheels"


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _beside_python(name: str) -> Path:
    return Path(sys.executable).parent / name


@bundle_app.command("build")
def build_bundle(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the bundle into.")],
    python_version: Annotated[str, typer.Option(help="Target Python (major.minor).")] = "3.11",
    platform: Annotated[
        str, typer.Option(help="Target platform tag of the wheels (glibc manylinux tag).")
    ] = "manylinux_2_28_x86_64",
    wheel_cache: Annotated[
        Path | None,
        typer.Option(help="Download cache reused across builds (default ~/.cache/holdfast)."),
    ] = None,
    weaviate_binary: Annotated[
        Path | None, typer.Option(help="weaviate-server to ship (default: .venv/bin).")
    ] = None,
    ollama_binary: Annotated[
        Path | None, typer.Option(help="ollama to ship (default: .venv/bin).")
    ] = None,
    helm_binary: Annotated[
        Path | None, typer.Option(help="helm used to package the chart (default: .venv/bin).")
    ] = None,
    download: Annotated[
        bool, typer.Option(help="Fetch missing wheels; --no-download uses the cache only.")
    ] = True,
    archive: Annotated[bool, typer.Option(help="Also pack the folder into one tar.")] = True,
    bundle_version: Annotated[
        str | None,
        typer.Option(
            help="Version of this bundle (default: the holdfast version); a rebuild of the same "
            "holdfast version with other wheels needs a new one to install as an upgrade."
        ),
    ] = None,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            envvar=SIGN_KEY_ENV,
            help="Secret OpenPGP key file (gpg --armor --export-secret-keys) that signs "
            "SHA256SUMS and the archive.",
        ),
    ] = None,
    sign_passphrase_file: Annotated[
        Path | None,
        typer.Option(envvar=SIGN_PASSPHRASE_ENV, help="File holding the key's passphrase."),
    ] = None,
    unsigned: Annotated[
        bool, typer.Option(help="Build without a signature (development only).")
    ] = False,
    ocr: Annotated[
        bool,
        typer.Option(
            help="Carry tesseract-ocr, tesseract-ocr-eng and poppler-utils with every Debian "
            "package they need beyond a minimal host (resolved by this machine's apt, which must "
            "run the target release); --no-ocr leaves them out."
        ),
    ] = True,
    ocr_language: Annotated[
        list[str] | None,
        typer.Option(
            help="Tesseract language to carry (Debian tesseract-ocr-<code>), repeatable; "
            "default eng."
        ),
    ] = None,
    deb_cache: Annotated[
        Path | None,
        typer.Option(help="Download cache of the .deb files (default ~/.cache/holdfast/debs)."),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Output folder of `holdfast images build` (images.json and the .oci.tar "
            "archives): carry its images under images/ for a Kubernetes install, each checked "
            "against its manifest digest. Default: no images.",
        ),
    ] = None,
    with_vllm: Annotated[
        bool,
        typer.Option(
            "--with-vllm",
            help="Also carry the GPU model server (vLLM with torch and the CUDA wheels of "
            "offline_wheels/vllm/requirements.lock, about 5 GB) under vllm/, for hosts with "
            "llm_backend or embeddings_backend vllm. Default: left out.",
        ),
    ] = False,
) -> None:
    """Build wheelhouse, binaries, OCR's Debian packages, models, images (with --images), chart,
    playbook, manifest, SHA256SUMS, SBOM, archive, and sign SHA256SUMS and the archive."""
    from gateway.bundle.build import STEPS, BuildError, BuildOptions, build
    from gateway.bundle.debs import DebError, ocr_packages
    from gateway.bundle.signing import Signer
    from gateway.bundle.wheelhouse import Target

    if sign_key is None and not unsigned:
        _fail(f"no signing key: pass --sign-key or set {SIGN_KEY_ENV} (or --unsigned)")
    signer = Signer(sign_key.resolve(), sign_passphrase_file) if sign_key and not unsigned else None

    try:
        deb_packages = ocr_packages(ocr_language or ["eng"])
    except DebError as exc:
        _fail(str(exc))
    target = Target(python_version=python_version, platform=platform)
    cache = wheel_cache or DEFAULT_CACHE / f"cp{python_version.replace('.', '')}-{platform}"
    opts = BuildOptions(
        out=out_dir.resolve(),
        repo_root=REPO_ROOT,
        wheel_cache=cache,
        weaviate_binary=weaviate_binary or _beside_python("weaviate-server"),
        ollama_binary=ollama_binary or _beside_python("ollama"),
        helm_binary=helm_binary or _beside_python("helm"),
        target=target,
        download=download,
        archive=archive,
        bundle_version=bundle_version,
        signer=signer,
        ocr_packages=ocr,
        deb_packages=deb_packages,
        deb_cache=deb_cache,
        images_dir=images.resolve() if images else None,
        vllm=with_vllm,
    )
    started = time.monotonic()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("bundle", total=len(STEPS))
        seen: list[str] = []

        def on_progress(step: str, detail: str) -> None:
            if step not in seen:
                seen.append(step)
                progress.update(task, completed=STEPS.index(step))
            progress.update(task, description=f"{step}: {detail}")

        try:
            result = build(opts, on_progress)
        except BuildError as exc:
            progress.stop()
            _fail(str(exc))
        progress.update(task, completed=len(STEPS), description="done")
    size_gb = result.size_bytes / 1e9
    out.print(
        f"[green]✓[/] bundle {result.folder} ({len(result.manifest.artefacts)} artefacts, "
        f"{size_gb:.2f} GB) in {time.monotonic() - started:.0f} s",
        highlight=False,
    )
    if result.archive:
        out.print(f"[green]✓[/] archive {result.archive}", highlight=False)
    for signature in result.signatures:
        out.print(f"[green]✓[/] signature {signature}", highlight=False)
    if not result.signatures:
        err.print("[yellow]warning:[/] the bundle is not signed", highlight=False)


@bundle_app.command("verify")
def verify_bundle(
    path: Annotated[Path, typer.Argument(help="Bundle folder or its .tar archive.")],
    key: Annotated[
        Path | None,
        typer.Option(
            envvar=PUBLIC_KEY_ENV,
            help="The vendor's public key (gpg --export, binary or armored); only it is trusted.",
        ),
    ] = None,
    allow_unsigned: Annotated[
        bool, typer.Option(help="Skip the signature check: checksums only (development only).")
    ] = False,
) -> None:
    """Check the signature first (before reading the archive), then every file against
    SHA256SUMS and the manifest; name what is missing or altered."""
    from gateway.bundle.signing import SignatureError
    from gateway.bundle.verify import BundleFormatError, check_signature, verify

    if not allow_unsigned:
        if key is None:
            _fail(f"no public key: pass --key or set {PUBLIC_KEY_ENV} (or --allow-unsigned)")
        try:
            signer = check_signature(path, key)
        except (SignatureError, BundleFormatError) as exc:
            _fail(str(exc))
        out.print(f"[green]✓[/] {signer}", highlight=False)
    try:
        with out.status("hashing…") as status:
            report = verify(path, on_file=lambda rel: status.update(f"hashing {rel}"))
    except BundleFormatError as exc:
        _fail(str(exc))
    for problem in report.problems:
        detail = f" ({problem.detail})" if problem.detail else ""
        err.print(f"[bold red]{problem.status}[/] {problem.path}{detail}", highlight=False)
    if not report.ok:
        _fail(f"bundle {path} failed verification: {len(report.problems)} problem(s)")
    out.print(f"[green]✓[/] {path}: all {report.checked} files match SHA256SUMS and the manifest")
