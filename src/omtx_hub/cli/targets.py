"""Client commands for targets: create (a receptor with its binding site, or a sequence), list, show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omtx_hub.cli.app import target_app
from omtx_hub.cli.common import DEFAULT_URL, UrlOption, console, err, hub_client

__all__ = ["target_create", "target_list", "target_show"]


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise typer.BadParameter(f"{what} expects three numbers like 15.2,53.9,16.9") from exc
    if len(values) != 3:
        raise typer.BadParameter(f"{what} expects three numbers like 15.2,53.9,16.9")
    return values


@target_app.command("create")
def target_create(
    receptor: Annotated[
        Path | None,
        typer.Argument(
            help="Receptor structure (.pdb, .cif, or a prepared .pdbqt); omit with --sequence.", exists=True
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Target name.")] = "",
    box_center: Annotated[str | None, typer.Option(help="Box center x,y,z in Å.")] = None,
    box_size: Annotated[str | None, typer.Option(help="Box size x,y,z in Å.")] = None,
    reference_ligand: Annotated[
        Path | None, typer.Option(help="Reference ligand (.sdf): box around it.", exists=True)
    ] = None,
    residues: Annotated[str | None, typer.Option(help="Pocket residues, e.g. A:315,A:381: box around them.")] = None,
    blind: Annotated[bool, typer.Option(help="Box around the whole receptor (slower, less reliable).")] = False,
    padding: Annotated[float, typer.Option(help="Å added on each side (reference ligand, residues, blind).")] = 5.0,
    sequence: Annotated[
        list[str] | None,
        typer.Option(help="No receptor: a sequence target for co-folding (Boltz-2); repeat for more chains (A, B, …)."),
    ] = None,
    copies: Annotated[
        int, typer.Option(help="Copies of each --sequence chain (2: a homodimer); copies take the next letters.")
    ] = 1,
    msa: Annotated[
        list[Path] | None,
        typer.Option(help="MSA (.a3m) of a chain, matched by its first sequence; repeat per chain.", exists=True),
    ] = None,
    cofactor: Annotated[
        list[str] | None,
        typer.Option(help="Boltz-2 cofactor or ion co-folded with every ligand: a CCD code or SMILES; repeatable."),
    ] = None,
    keep_hetero: Annotated[
        list[str] | None,
        typer.Option(help="Keep this hetero residue of the receptor file (e.g. HEM) as a cofactor; repeatable."),
    ] = None,
    repair: Annotated[
        bool, typer.Option(help="Rebuild missing side-chain atoms of the receptor with PDBFixer first.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create a target once (a receptor with its binding site, or --sequence); prints the id for --target."""
    if not name.strip():
        err.print("[red]error:[/red] give the target a --name")
        raise typer.Exit(1)
    site: dict[str, Any] | None = None
    if receptor is None:
        if not sequence:
            err.print("[red]error:[/red] give a receptor file, or --sequence for a sequence target")
            raise typer.Exit(1)
    else:
        chosen = [box_center is not None, residues is not None, blind]
        if sum(chosen) > 1 or (sum(chosen) == 0 and reference_ligand is None):
            err.print(
                "[red]error:[/red] give one binding site: --box-center/--box-size, --reference-ligand, "
                "--residues or --blind"
            )
            raise typer.Exit(1)
        if box_center is not None:
            site = {
                "mode": "box",
                "center": _floats(box_center, "--box-center"),
                "size": _floats(box_size or "20,20,20", "--box-size"),
            }
        elif residues is not None:
            site = {"mode": "residues", "residues": [r for r in residues.split(",") if r], "padding": padding}
        elif blind:
            site = {"mode": "blind", "padding": padding}
        else:
            site = {"mode": "ligand", "padding": padding}
    with hub_client(url) as hub:
        chains = (
            [{"id": chr(ord("A") + i), "sequence": seq, "copies": copies} for i, seq in enumerate(sequence[:26])]
            if sequence and (len(sequence) > 1 or copies > 1)
            else None
        )
        target = hub.create_target(
            name,
            receptor,
            site,
            reference_ligand=reference_ligand,
            protein_sequence=sequence[0] if sequence and chains is None else None,
            msa=msa,
            repair=repair,
            chains=chains,
            cofactors=cofactor,
            keep_hetero=keep_hetero,
        )
    where = (
        f"box center {target['binding_site']['center']} size {target['binding_site']['size']}"
        if target["binding_site"]
        else f"sequence of {len(target['protein_sequence'])} residues"
    )
    console.print(f"{target['target_id']}  {target['name']}  {where}")
    console.print("chains: " + ", ".join(f"{c['chain']} ({c['residues']} residues)" for c in target["chains"]))
    if target["cofactors"]:
        console.print("cofactors: " + ", ".join(c.get("ccd") or c.get("smiles", "") for c in target["cofactors"]))
    if (target["binding_site"] or {}).get("pocket_residues"):
        console.print("pocket (Boltz-2): " + ", ".join(target["binding_site"]["pocket_residues"]))
    for warning in target["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {warning}")


def _msa_chain(name: str) -> str:
    """The chain an uploaded MSA file belongs to: msa_B.a3m → B (msa.a3m: a single-chain target's A)."""
    return name[:-4].removeprefix("msa_") if name.startswith("msa_") else "A"


@target_app.command("list")
def target_list(url: UrlOption = DEFAULT_URL) -> None:
    """List targets."""
    with hub_client(url) as hub:
        items = hub.targets()
    table = Table()
    for col in ("target_id", "name", "kind", "site", "center", "size", "msa", "created"):
        table.add_column(col)
    for t in items:
        site = t["binding_site"] or {"mode": "-", "center": "-", "size": "-"}
        table.add_row(
            t["target_id"],
            t["name"],
            t["kind"],
            site["mode"],
            str(site["center"]),
            str(site["size"]),
            ", ".join(_msa_chain(f) for f in t["files"] if f.startswith("msa")) or "-",
            t["created_at"][:19],
        )
    console.print(table)


@target_app.command("show")
def target_show(target_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Show one target as JSON."""
    with hub_client(url) as hub:
        console.print_json(json.dumps(hub.target(target_id)))
