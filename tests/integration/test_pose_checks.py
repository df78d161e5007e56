"""PoseBusters and ProLIF on real poses in the bundled 1IEP (Abl kinase) receptor: the crystal pose of
imatinib passes and makes its known contacts; the same ligand pushed into the protein fails the
clash checks; a job without a pose gets no checks, a failure to check never fails a job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdkit import Chem

from omtx_hub.pose_checks import check_job_pose, check_pose

DATA = Path(__file__).resolve().parents[2] / "src" / "omtx_hub" / "demo" / "1iep"
RECEPTOR = (DATA / "1iep_receptorH.pdb").read_bytes()
CRYSTAL = Chem.MolFromMolFile(str(DATA / "1iep_ligand.sdf"), removeHs=False)


def _shifted(mol: Chem.Mol, dx: float) -> Chem.Mol:
    moved = Chem.Mol(mol)
    conformer = moved.GetConformer()
    for i in range(moved.GetNumAtoms()):
        p = conformer.GetAtomPosition(i)
        conformer.SetAtomPosition(i, (p.x + dx, p.y, p.z))
    return moved


def test_the_crystal_pose_passes_and_makes_the_hinge_contact() -> None:
    report = check_pose(CRYSTAL, RECEPTOR, reference=CRYSTAL)
    assert report.results["pose_checks_passed"] is True and report.results["pose_checks_failed"] == []
    summary = report.results["interactions"].split(", ")
    assert "A:MET318:HBAcceptor" in summary  # the hinge: Met318's backbone NH donates to the pyrimidine
    assert "A:THR315:HBDonor" in summary  # the gatekeeper: imatinib's amide NH donates to Thr315
    hydrophobic = [c for c in summary if c.endswith(":Hydrophobic")]
    assert hydrophobic and summary[-len(hydrophobic) :] == hydrophobic  # every contact; polar ones first
    assert b"rmsd_\xe2\x89\xa4_2\xc3\xa5,True" in report.files["posebusters.csv"]
    # each hydrogen bond keeps its two heavy atoms (the viewer draws it): donor–acceptor distance
    contacts = json.loads(report.files["interactions.json"])
    hinge = next(c for c in contacts if (c["residue"], c["number"], c["interaction"]) == ("MET", 318, "HBAcceptor"))
    gap = sum((a - b) ** 2 for a, b in zip(hinge["ligand_xyz"], hinge["protein_xyz"], strict=True)) ** 0.5
    assert gap == pytest.approx(hinge["distance_angstrom"], abs=0.01)
    assert all(
        "ligand_xyz" not in c for c in contacts if c["interaction"] == "Hydrophobic"
    )  # redock: the reference is imatinib


def test_a_pose_pushed_into_the_protein_fails_the_clash_checks() -> None:
    report = check_pose(_shifted(CRYSTAL, 4.0), RECEPTOR)
    assert report.results["pose_checks_passed"] is False
    assert {"minimum_distance_to_protein", "volume_overlap_with_protein"} <= set(report.results["pose_checks_failed"])
    assert b"rmsd" not in report.files["posebusters.csv"]  # no reference given: the dock checks only


def test_jobs_without_a_pose_get_none_and_a_broken_one_never_raises(tmp_path: Path) -> None:
    files = {"results.json": b"{}"}
    assert check_job_pose(files.__getitem__, files, "CCO", {}) is None
    receptor = tmp_path / "receptor.pdb"
    receptor.write_bytes(RECEPTOR)
    broken = {"poses.sdf": b"not an SDF record\n$$$$\n"}
    report = check_job_pose(broken.__getitem__, broken, "CCO", {"receptor.pdb": receptor})
    assert report is not None and report.files == {}
    assert "poses.sdf holds no record" in report.results["pose_checks_error"]
    assert report.results["pose_checks_seconds"] >= 0


@pytest.mark.parametrize("shift", [0.0, 4.0])
def test_check_job_pose_reads_vinas_first_pose(tmp_path: Path, shift: float) -> None:
    from io import StringIO

    out = StringIO()
    writer = Chem.SDWriter(out)
    writer.write(_shifted(CRYSTAL, shift))
    writer.close()
    receptor = tmp_path / "receptor.pdb"
    receptor.write_bytes(RECEPTOR)
    files = {"poses.sdf": out.getvalue().encode()}
    report = check_job_pose(
        files.__getitem__, files, "ignored: the pose is read from poses.sdf", {"receptor.pdb": receptor}
    )
    assert report is not None and report.results["pose_checks_passed"] is (shift == 0.0)


def test_the_checks_fork_no_process() -> None:
    """A worker has threads (heartbeat, webhooks): a process forked while one of them holds a lock can
    hang for good, as ProLIF's default process pool once did in a full suite run. The checks run
    in the worker's own process."""
    import os

    forks: list[int] = []
    os.register_at_fork(before=lambda: forks.append(os.getpid()))
    check_pose(CRYSTAL, RECEPTOR, reference=CRYSTAL)
    assert forks == []
