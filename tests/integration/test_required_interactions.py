"""Ranking a screen on the contacts its poses make, on a real SQLite file and the real PostgreSQL
server: the batch's own rules from its submission, a request's own on exports and stats, the
fingerprint frequency table, and refusals at submission. The poses' contacts are written as a
worker records them (the checks themselves are tested in test_pose_checks.py and test_vina.py)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hub_testing import ApiClient
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission

DATA = Path(__file__).resolve().parents[2] / "src" / "omtx_hub" / "demo" / "1iep"
POSES = {  # ligand → (vina score, the pose's contacts, PoseBusters verdict)
    "hinge_binder": (-9.0, "A:MET318:HBAcceptor, A:THR315:HBDonor, A:LEU248:Hydrophobic", True),
    "best_score_no_hinge": (-11.0, "A:ASP381:HBAcceptor, A:LEU248:Hydrophobic", True),
    "hinge_but_clashing": (-10.0, "A:MET318:HBAcceptor, A:LEU370:Hydrophobic", False),
    "weak_hinge": (-6.0, "A:MET318:HBAcceptor", True),
}


def _screen(hub: Hub, ranking: dict[str, object] | None = None) -> str:
    """A vina batch whose children completed with the given poses' results."""
    sub = BatchSubmission(
        owner="local",
        predictor="vina",
        protein_sequence="MKTAYIAKQR",
        batch_name="hinge screen",
        ligands=[Ligand(name, "CCO") for name in POSES],
        max_attempts=1,
        ranking=ranking,
    )
    batch_id = str(hub.manager.submit_batch(sub).record["job_id"])
    claimed = hub.manager.claim("w1", ["vina"], limit=len(POSES))
    results = {
        job.job_id: {
            "vina_score_kcal_mol": score,
            "interactions": contacts,
            "pose_checks_passed": passed,
            "pose_checks_failed": [] if passed else ["volume_overlap_with_protein"],
        }
        for job in claimed
        for score, contacts, passed in [POSES[job.input["ligand_name"]]]
    }
    hub.manager.complete_many([(job, results[job.job_id], 1.0, 1.0) for job in claimed], "w1")
    return batch_id


def _ranked(api: ApiClient, batch_id: str, **query: object) -> list[tuple[str, int | None]]:
    r = api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "json", **query})
    assert r.status_code == 200, r.text
    return [(row["ligand_name"], row["rank"]) for row in r.json()["results"]]


def test_exports_and_stats_rank_only_what_makes_the_required_contacts(api: ApiClient, hub: Hub) -> None:
    batch_id = _screen(hub)
    assert _ranked(api, batch_id) == [
        ("best_score_no_hinge", 1),
        ("hinge_but_clashing", 2),
        ("hinge_binder", 3),
        ("weak_hinge", 4),
    ]
    hinge = _ranked(api, batch_id, required_interactions="A:MET318:HBAcceptor")
    assert hinge[:3] == [("hinge_but_clashing", 1), ("hinge_binder", 2), ("weak_hinge", 3)]
    assert hinge[3] == ("best_score_no_hinge", None)  # listed after the ranked ones, without a rank
    sane = _ranked(api, batch_id, required_interactions=["A:MET318", "A:THR315"], pose_checks="require")
    assert [name for name, rank in sane if rank] == ["hinge_binder"]
    csv_rows = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/jobs/{batch_id}/export").text)))
    assert {r["ligand_name"]: r["pose_checks_failed"] for r in csv_rows}[
        "hinge_but_clashing"
    ] == "volume_overlap_with_protein"

    stats = api.get(f"/api/v1/jobs/{batch_id}/stats", params={"top": 3}).json()
    table = {row["interaction"]: row["count"] for row in stats["interactions"]}
    assert table["A:MET318:HBAcceptor"] == 2 and table["A:LEU248:Hydrophobic"] == 2 and "A:THR315:HBDonor" in table
    assert stats["interactions"][0]["fraction"] == round(2 / 3, 4)
    hinge_stats = api.get(f"/api/v1/jobs/{batch_id}/stats", params={"required_interactions": "A:MET318:HBAcceptor"})
    assert [row["ligand_name"] for row in hinge_stats.json()["top"]] == [
        "hinge_but_clashing",
        "hinge_binder",
        "weak_hinge",
    ]
    assert hinge_stats.json()["required_interactions"] == ["A:MET318:HBAcceptor"]
    bad = api.get(f"/api/v1/jobs/{batch_id}/export", params={"required_interactions": "A:MET318:Nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_required_interactions"


def test_a_batch_keeps_the_rules_it_was_submitted_with(api: ApiClient, hub: Hub) -> None:
    batch_id = _screen(hub, {"required_interactions": ["A:MET318:HBAcceptor"], "pose_checks": "require"})
    assert [name for name, rank in _ranked(api, batch_id) if rank] == ["hinge_binder", "weak_hinge"]
    assert _ranked(api, batch_id, pose_checks="any")[0] == ("hinge_but_clashing", 1)  # a request may relax them
    head = api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "json"}).json()
    assert head["required_interactions"] == ["A:MET318:HBAcceptor"] and head["pose_checks"] == "require"


def test_submission_checks_required_contacts_against_the_target(api: ApiClient, hub: Hub) -> None:
    target = hub.create_target(
        owner="local",
        name="abl",
        receptor=(DATA / "1iep_receptorH.pdb").read_bytes(),
        receptor_filename="1iep.pdb",
        site={"mode": "box", "center": [15.19, 53.9, 16.92], "size": [20, 20, 20]},
    )
    body = {
        "batch_name": "s",
        "target_id": target["target_id"],
        "predictor": "vina",
        "ligands": [{"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}],
    }
    refused = api.post(
        "/api/v1/jobs/predict/batch", json={**body, "required_interactions": ["A:MET999", "A:THR315:Foo"]}
    )
    assert refused.status_code == 422, refused.text
    entries = [p["entry"] for p in refused.json()["error"]["details"]["required_interactions"]]
    assert entries == ["A:MET999", "A:THR315:Foo"]
    accepted = api.post(
        "/api/v1/jobs/predict/batch", json={**body, "required_interactions": ["A:MET318"], "pose_checks": "require"}
    )
    assert accepted.status_code == 202, accepted.text
    parent = hub.manager.get(accepted.json()["batch_id"])
    assert parent["input"]["ranking"] == {"required_interactions": ["A:MET318"], "pose_checks": "require"}
    # boltz2 co-folds the sequence: its residues are numbered 1.. along chain A
    sequence = {
        "batch_name": "s",
        "protein_sequence": "MKTAYIAKQR",
        "predictor": "boltz2",
        "ligands": [{"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}],
    }
    assert (
        api.post("/api/v1/jobs/predict/batch", json={**sequence, "required_interactions": ["A:TYR5"]}).status_code
        == 202
    )
    wrong = api.post("/api/v1/jobs/predict/batch", json={**sequence, "required_interactions": ["A:MET318"]})
    assert wrong.status_code == 422 and json.loads(wrong.text)["error"]["details"]["required_interactions"][0][
        "reason"
    ] == ("the target has no residue A:MET318")
