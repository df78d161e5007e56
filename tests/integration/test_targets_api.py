"""Docking targets through the API: every binding-site mode, and every bad input rejected with nothing stored."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from hub_testing import ApiClient

DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
RECEPTOR = (DATA / "1iep_receptorH.pdb").read_bytes()
REFERENCE = (DATA / "1iep_ligand.sdf").read_bytes()
BOX = {"mode": "box", "center": [15.19, 53.903, 16.917], "size": [20, 20, 20]}


def create(
    api: ApiClient,
    site: dict[str, Any],
    receptor: bytes = RECEPTOR,
    filename: str = "1iep.pdb",
    reference: bytes | None = None,
) -> Any:
    upload = {"receptor": (filename, receptor)}
    if reference is not None:
        upload["reference_ligand"] = ("ref.sdf", reference)
    return api.post("/api/v1/targets", data={"name": "abl", "binding_site": json.dumps(site)}, files=upload)


@pytest.mark.parametrize(
    ("site", "reference", "mode"),
    [
        (BOX, None, "box"),
        ({"mode": "ligand", "padding": 4}, REFERENCE, "ligand"),
        ({"mode": "residues", "residues": ["A:315", "A:381"]}, None, "residues"),
        ({"mode": "blind"}, None, "blind"),
    ],
)
def test_every_binding_site_mode(api: ApiClient, site: dict[str, Any], reference: bytes | None, mode: str) -> None:
    r = create(api, site, reference=reference)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["binding_site"]["mode"] == mode and body["binding_site"]["receptor_atoms_in_box"] > 0
    assert body["chains"][0]["chain"] == "A" and body["chains"][0]["residues"] == 274
    assert body["protein_sequence"].startswith("SMDPSSPNYDKWEMERTDITMKHKLGG")
    assert bool(body["warnings"]) is (mode == "blind")
    if mode == "ligand":
        assert body["binding_site"]["center"] == pytest.approx([15.19, 53.903, 16.917], abs=0.01)
    fetched = api.get(f"/api/v1/targets/{body['target_id']}").json()
    assert fetched == body
    assert api.get("/api/v1/targets").json()["items"][0]["target_id"] == body["target_id"]
    pdb = api.get(f"/api/v1/targets/{body['target_id']}/files/receptor.pdb")
    assert pdb.status_code == 200 and b"ATOM" in pdb.content


@pytest.mark.parametrize(
    ("site", "receptor", "filename", "code"),
    [
        (BOX, b"this is not a protein structure\n", "x.pdb", "invalid_receptor"),
        (BOX, RECEPTOR, "receptor.txt", "invalid_receptor"),
        (BOX, b"data_x\n_cell.length_a 10\n", "x.cif", "invalid_receptor"),
        ({"mode": "box", "center": [200, 200, 200], "size": [20, 20, 20]}, RECEPTOR, "r.pdb", "box_outside_receptor"),
        ({"mode": "box", "center": [15, 53, 16], "size": [20, 0, 20]}, RECEPTOR, "r.pdb", "invalid_binding_site"),
        ({"mode": "box", "center": [15, 53, 16], "size": [20, -5, 20]}, RECEPTOR, "r.pdb", "invalid_binding_site"),
        ({"mode": "box", "center": [15, 53]}, RECEPTOR, "r.pdb", "invalid_binding_site"),
        ({"mode": "residues", "residues": ["A:9999"]}, RECEPTOR, "r.pdb", "invalid_binding_site"),
        ({"mode": "ligand"}, RECEPTOR, "r.pdb", "invalid_binding_site"),
        ({"mode": "pocket-finder"}, RECEPTOR, "r.pdb", "invalid_binding_site"),
    ],
)
def test_bad_targets_are_rejected_and_nothing_is_stored(
    api: ApiClient, site: dict[str, Any], receptor: bytes, filename: str, code: str
) -> None:
    r = create(api, site, receptor=receptor, filename=filename)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert api.get("/api/v1/targets").json()["items"] == []


def test_docking_submissions_are_checked(api: ApiClient) -> None:
    target_id = create(api, BOX).json()["target_id"]
    huge = "C" * 130
    cases = [
        ({"ligand_smiles": "CCO", "predictor": "vina", "protein_sequence": "MKTAYIAKQR"}, "target_required"),
        ({"ligand_smiles": huge, "predictor": "vina", "target_id": target_id}, "invalid_ligand"),
        (
            {"ligand_smiles": "CCO", "predictor": "vina", "target_id": target_id, "params": {"exhaustiveness": 0}},
            "invalid_params",
        ),
        (
            {"ligand_smiles": "CCO", "predictor": "vina", "target_id": target_id, "params": {"colour": "red"}},
            "invalid_params",
        ),
    ]
    for body, code in cases:
        r = api.post("/api/v1/jobs/predict", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    assert "130 heavy atoms" in api.post("/api/v1/jobs/predict", json=cases[1][0]).json()["error"]["message"]
    r = api.post("/api/v1/jobs/predict", json={"ligand_smiles": "CCO", "predictor": "vina", "target_id": "tgt_nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "target_not_found"
    assert api.get("/api/v1/jobs").json()["items"] == []
    ok = api.post("/api/v1/jobs/predict", json={"ligand_smiles": "CCO", "predictor": "vina", "target_id": target_id})
    assert ok.status_code == 202
    record = api.get(f"/api/v1/jobs/{ok.json()['job_id']}").json()
    assert record["params"]["exhaustiveness"] == 8 and record["input"]["target"]["target_id"] == target_id
