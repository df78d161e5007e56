"""Model files: what a predictor needs on disk, ``models check`` and ``models fetch``.

Boltz-2 needs, in its cache folder (``OMTX_BOLTZ_CACHE``, else ``$BOLTZ_CACHE``, else ``~/.boltz``):
``boltz2_conf.ckpt`` (structure + confidence), ``boltz2_aff.ckpt`` (affinity) and ``mols/`` with one
pickle per CCD component (the 21 protein tokens at least; it comes as ``mols.tar``). ``fetch``
downloads the official files (or the same names from ``OMTX_MODEL_MIRROR_URL``), each to a
``.part`` file renamed when complete, skips files already present, and unpacks ``mols.tar``.

Nothing here imports boltz or torch: ``check`` runs anywhere, and the API never loads a model.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from omtx_hub.settings import Settings

__all__ = [
    "BOLTZ2_FILES",
    "PROTEIN_TOKENS",
    "ModelFile",
    "boltz2_status",
    "ccd_code_known",
    "fetch_boltz2",
    "missing_boltz2_message",
]

PROTEIN_TOKENS = (
    "ALA",
    "ARG",
    "ASN",
    "ASP",
    "CYS",
    "GLN",
    "GLU",
    "GLY",
    "HIS",
    "ILE",
    "LEU",
    "LYS",
    "MET",
    "PHE",
    "PRO",
    "SER",
    "THR",
    "TRP",
    "TYR",
    "VAL",
    "UNK",
)

# The official locations (the same ones boltz-community's own downloader uses), first one first.
BOLTZ2_FILES: dict[str, tuple[str, ...]] = {
    "boltz2_conf.ckpt": (
        "https://model-gateway.boltz.bio/boltz2_conf.ckpt",
        "https://huggingface.co/boltz-community/boltz-2/resolve/main/boltz2_conf.ckpt",
    ),
    "boltz2_aff.ckpt": (
        "https://model-gateway.boltz.bio/boltz2_aff.ckpt",
        "https://huggingface.co/boltz-community/boltz-2/resolve/main/boltz2_aff.ckpt",
    ),
    "mols.tar": ("https://huggingface.co/boltz-community/boltz-2/resolve/main/mols.tar",),
}


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    present: bool
    detail: str


def boltz2_status(cache: Path) -> list[ModelFile]:
    """What the Boltz-2 cache holds, one line per required item."""
    items = []
    for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt"):
        path = cache / name
        size = path.stat().st_size if path.is_file() else 0
        items.append(ModelFile(name, path, size > 0, f"{size / 2**20:.0f} MiB" if size else "missing"))
    mols = cache / "mols"
    missing = [code for code in PROTEIN_TOKENS if not (mols / f"{code}.pkl").is_file()]
    count = len(list(mols.glob("*.pkl"))) if mols.is_dir() else 0
    detail = (
        f"{count} components" if not missing else f"missing {len(missing)} protein tokens ({', '.join(missing[:5])}…)"
    )
    items.append(ModelFile("mols/", mols, not missing, detail))
    return items


def ccd_code_known(cache: Path, code: str) -> bool:
    """Whether Boltz-2 can load this CCD component: its molecule file is in the cache's ``mols/``
    (``models fetch boltz2`` unpacks the whole dictionary there)."""
    return (cache / "mols" / f"{code}.pkl").is_file()


def missing_boltz2_message(cache: Path) -> str | None:
    """None when the cache is complete, else what is missing and exactly what to do."""
    missing = [item for item in boltz2_status(cache) if not item.present]
    if not missing:
        return None
    return (
        f"Boltz-2 model files missing in {cache}: {', '.join(m.name for m in missing)}. "
        "Run `omtx-hub models fetch boltz2` on a machine with internet access (about 4 GB), or copy the files "
        "there, or point OMTX_BOLTZ_CACHE at a folder that has them; `omtx-hub models check` shows what is present."
    )


def _download(client: httpx.Client, url: str, dest: Path, progress: Callable[[str], None]) -> None:
    part = dest.with_name(dest.name + ".part")
    with client.stream("GET", url) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length") or 0)
        done = 0
        with part.open("wb") as handle:
            for chunk in response.iter_bytes(1 << 20):
                handle.write(chunk)
                done += len(chunk)
        if total and done != total:
            raise OSError(f"{url}: got {done} of {total} bytes")
    part.replace(dest)
    progress(f"downloaded {dest.name} ({done / 2**20:.1f} MiB) from {url}")


def _unpack_mols(tar_path: Path, cache: Path) -> int:
    """Unpack ``mols.tar`` (entries ``mols/<CODE>.pkl``) into the cache; refuses anything else."""
    with tarfile.open(tar_path) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("mols/") or m.name == "mols"]
        tar.extractall(cache, members=members, filter="data")
    return sum(1 for m in members if m.isfile())


def fetch_boltz2(settings: Settings, progress: Callable[[str], None] = print) -> list[ModelFile]:
    """Download what the Boltz-2 cache lacks; return its status afterwards. Raises OSError on failure."""
    cache = settings.resolved_boltz_cache()
    cache.mkdir(parents=True, exist_ok=True)
    status = {item.name: item for item in boltz2_status(cache)}
    wanted = [name for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt") if not status[name].present]
    if not status["mols/"].present:
        wanted.append("mols.tar")
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, read=300.0)) as client:
        for name in wanted:
            urls = (
                (f"{settings.model_mirror_url.rstrip('/')}/{name}",)
                if settings.model_mirror_url
                else BOLTZ2_FILES[name]
            )
            errors = []
            for url in urls:
                try:
                    _download(client, url, cache / name, progress)
                    break
                except (httpx.HTTPError, OSError) as exc:
                    errors.append(f"{url}: {exc}")
            else:
                raise OSError(f"could not download {name}: " + "; ".join(errors))
            if name == "mols.tar":
                count = _unpack_mols(cache / name, cache)
                progress(f"unpacked {count} CCD components into {cache / 'mols'}")
    if not wanted:
        progress(f"nothing to download: {cache} is complete")
    return boltz2_status(cache)
