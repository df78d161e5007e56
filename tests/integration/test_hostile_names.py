"""Ligand names are user data: control characters are refused at every entry point, every other name
survives every file the hub writes exactly, and no export can be turned against its reader."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pyarrow.parquet as pq
import pytest
from rdkit import Chem

from hub_testing import ApiClient, run_all
from omtx_hub.worker import Worker

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
BATCH, UPLOAD = "/api/v1/jobs/predict/batch", "/api/v1/jobs/predict/batch/upload"

# printable, and each one breaks a naive writer: an SDF record end, a mol block line, an SD property
# header, spreadsheet formulas, CSV quoting, HTML, non-ASCII
KEPT = [
    "a$$$$b",
    "M  END",
    ">  <rank>",
    '=HYPERLINK("http://example.com","x")',
    "+SUM(1)",
    "-2+3",
    "@cmd",
    'quote", comma',
    "ünïcødé ✓ 配体",
    "<b>bold</b>",
]
REFUSED = {
    "new\nline": "U+000A",
    "carriage\rreturn": "U+000D",
    "nul\x00byte": "U+0000",
    "tab\there": "U+0009",
    "c1\x85next-line": "U+0085",
    "del\x7f": "U+007F",
    "line\u2028separator": "U+2028",
    "$$$$": "ends a record in SDF files",
}


def error(r: object) -> dict:
    return r.json()["error"]  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_control_character_in_a_name_is_refused_naming_the_ligand(api: ApiClient, name: str) -> None:
    one = api.post("/api/v1/jobs/predict", json={"protein_sequence": SEQ, "ligand_smiles": "CCO", "ligand_name": name})
    assert one.status_code == 422 and error(one)["code"] == "invalid_ligand"
    assert REFUSED[name] in error(one)["message"]
    batch = api.post(
        BATCH,
        json={
            "batch_name": "b",
            "protein_sequence": SEQ,
            "ligands": [{"name": "fine", "smiles": "CCO"}, {"name": name, "smiles": "CCC"}],
        },
    )
    assert batch.status_code == 422 and error(batch)["code"] == "invalid_ligands"
    [problem] = error(batch)["details"]["ligands"]
    assert problem["index"] == 1 and problem["name"] == name and REFUSED[name] in problem["reason"]


def test_control_characters_in_csv_and_sdf_uploads_and_batch_names_are_refused(api: ApiClient) -> None:
    form = {"batch_name": "upload", "protein_sequence": SEQ}
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["name", "smiles"], ["ok", "CCO"], ["two\nlines", "CCC"]])  # quoted: one cell
    r = api.post(UPLOAD, data=form, files={"file": ("l.csv", buffer.getvalue().encode())})
    assert r.status_code == 422 and error(r)["details"]["ligands"][0]["name"] == "two\nlines"
    sdf = io.StringIO()
    with Chem.SDWriter(sdf) as writer:
        for name in ("ok", "nul\x00inside"):
            mol = Chem.MolFromSmiles("CCO")
            mol.SetProp("_Name", name)
            writer.write(mol)
    r = api.post(UPLOAD, data=form, files={"file": ("l.sdf", sdf.getvalue().encode())})
    assert r.status_code == 422 and "U+0000" in error(r)["details"]["ligands"][0]["reason"]
    r = api.post(
        BATCH, json={"batch_name": "screen\r\n2", "protein_sequence": SEQ, "ligands": [{"name": "a", "smiles": "CCO"}]}
    )
    assert r.status_code == 422 and error(r)["code"] == "invalid_batch_name"


@pytest.mark.parametrize("entry", ["json", "csv", "sdf"])
def test_printable_names_survive_every_export_exactly(api: ApiClient, worker: Worker, entry: str) -> None:
    smiles = ["CCO", "CCCO", "c1ccccc1", "CC(=O)O", "CCN", "OCC(O)CO", "CC(C)O", "CCCCO", "c1ccncc1", "CCOC"]
    pairs = list(zip(KEPT, smiles, strict=True))
    if entry == "json":
        r = api.post(
            BATCH,
            json={
                "batch_name": "hostile",
                "protein_sequence": SEQ,
                "ligands": [{"name": n, "smiles": s} for n, s in pairs],
            },
        )
    elif entry == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["name", "smiles"], *pairs])
        r = api.post(
            UPLOAD,
            data={"batch_name": "hostile", "protein_sequence": SEQ},
            files={"file": ("l.csv", buffer.getvalue().encode())},
        )
    else:
        sdf = io.StringIO()
        with Chem.SDWriter(sdf) as writer:
            for name, smi in pairs:
                mol = Chem.MolFromSmiles(smi)
                mol.SetProp("_Name", name)
                writer.write(mol)
        r = api.post(
            UPLOAD,
            data={"batch_name": "hostile", "protein_sequence": SEQ},
            files={"file": ("l.sdf", sdf.getvalue().encode())},
        )
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]
    run_all(worker)
    assert api.get(f"/api/v1/jobs/{batch_id}/status").json()["status"] == "completed"

    def export(fmt: str) -> bytes:
        got = api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": fmt})
        assert got.status_code == 200, got.text
        return got.content

    assert {row["ligand_name"] for row in json.loads(export("json"))["results"]} == set(KEPT)
    assert set(pq.read_table(io.BytesIO(export("parquet"))).column("ligand_name").to_pylist()) == set(KEPT)
    # CSV: a cell a spreadsheet would run as a formula starts with an apostrophe; the rest is exact
    expected_csv = {("'" + n) if n[0] in "=+-@" else n for n in KEPT}
    assert {row["ligand_name"] for row in csv.DictReader(io.StringIO(export("csv").decode()))} == expected_csv
    manifest = zipfile.ZipFile(io.BytesIO(export("zip"))).read("manifest.csv").decode()
    assert {row["ligand_name"] for row in csv.DictReader(io.StringIO(manifest))} == expected_csv
    # SDF: one record per completed ligand, none dropped; the test predictor's structure.cif has no
    # ligand to read, so every record says why it holds no atoms
    supplier = Chem.SDMolSupplier()
    supplier.SetData(export("sdf").decode(), sanitize=False)
    records = list(supplier)
    assert len(records) == len(KEPT) and all(m is not None for m in records)
    assert {m.GetProp("_Name") for m in records} == set(KEPT)
    assert all(m.GetNumAtoms() == 0 and m.HasProp("pose_error") for m in records)
    assert {m.GetProp("ligand_name") for m in records} == set(KEPT)


def test_vina_poses_sdf_keeps_a_hostile_name_in_every_record() -> None:
    from rdkit.Chem import AllChem

    from omtx_hub.predictors.vina import _poses_sdf

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
    AllChem.EmbedMultipleConfs(mol, numConfs=3, randomSeed=7)
    energies = [[-7.1, -7.5, 0.4], [-6.8, -7.0, 0.2], [-6.1, -6.5, 0.4]]
    for name in KEPT:
        supplier = Chem.SDMolSupplier()
        supplier.SetData(_poses_sdf(mol, name, [-7.1, -6.8, -6.1], energies).decode(), removeHs=False)
        poses = list(supplier)
        assert [m.GetProp("_Name") for m in poses] == [name] * 3
        assert [m.GetDoubleProp("vina_score_kcal_mol") for m in poses] == [-7.1, -6.8, -6.1]
        assert [m.GetIntProp("pose_rank") for m in poses] == [1, 2, 3]


def test_control_characters_in_target_names_and_idempotency_keys_are_refused(api: ApiClient) -> None:
    """NUL in any stored text was a 500 on PostgreSQL (its text type refuses it): a 422 now."""
    body = {"protein_sequence": SEQ, "ligand_smiles": "CCO", "idempotency_key": "run\x0017"}
    r = api.post("/api/v1/jobs/predict", json=body)
    assert r.status_code == 422 and error(r)["code"] == "invalid_idempotency_key" and "U+0000" in error(r)["message"]
    r = api.post(
        BATCH,
        json={
            "batch_name": "b",
            "protein_sequence": SEQ,
            "idempotency_key": "k\n",
            "ligands": [{"name": "a", "smiles": "CCO"}],
        },
    )
    assert r.status_code == 422 and error(r)["code"] == "invalid_idempotency_key"
    r = api.post("/api/v1/targets", data={"name": "kinase\x00", "protein_sequence": SEQ})
    assert r.status_code == 422 and error(r)["code"] == "invalid_target_name" and "U+0000" in error(r)["message"]
