"""The boltz2 predictor on the real boltz code path, offline: tiny random-weight checkpoints built by the
suite (tests/support/boltz_fixtures.py). Values are meaningless; files, keys, shapes and our parsing are
what is checked."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import gemmi
import numpy as np
import pytest
from rdkit import Chem

from conftest import TINY_BOLTZ, make_settings
from hub_testing import ApiClient
from omtx_hub.access import SESSION_COOKIE
from omtx_hub.app import create_app
from omtx_hub.domain import Ligand, Target
from omtx_hub.errors import InvalidInput, PredictorUnavailable
from omtx_hub.hub import open_hub
from omtx_hub.predictors.base import Outcome, PredictionTask
from omtx_hub.predictors.boltz2 import Boltz2Predictor
from omtx_hub.settings import Settings
from omtx_hub.submission import build_batch_submission, build_job_submission
from omtx_hub.worker import Worker

PEPTIDE = "MKTAYIAKQRQISFVKSHFSRQ"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
UNEMBEDDABLE = "C1=CC2=CC=C1C=C2"  # RDKit parses it; no 3D conformer exists


@pytest.fixture(scope="module")
def predictor(boltz_cache: Path) -> Boltz2Predictor:
    return Boltz2Predictor(Settings(boltz_cache=boltz_cache, boltz_cpu_threads=1))


def _target(msa: str = "empty", files: dict[str, Path] | None = None) -> Target:
    return Target(key=f"t-{msa}", protein_sequence=PEPTIDE, extra={"msa": msa}, files=files or {})


def _run(
    predictor: Boltz2Predictor,
    target: Target,
    ligands: list[tuple[str, str]],
    tmp: Path,
    stop: set[str] = frozenset(),
    **params: Any,
) -> dict[str, Outcome]:
    (tmp / "target").mkdir(parents=True, exist_ok=True)
    artifacts = predictor.prepare_target(target, tmp / "target")
    tasks = [
        PredictionTask(f"job{i}", Ligand(name, smiles), {**TINY_BOLTZ, **params})
        for i, (name, smiles) in enumerate(ligands)
    ]
    outcomes = predictor.predict(target, artifacts, tasks, tmp / "run", lambda job: job in stop)
    return {tasks[int(o.job_id[3:])].ligand.name: o for o in outcomes}


def test_real_boltz_for_smiles_and_ccd_ligands_with_a_bad_ligand_failing_alone(
    predictor: Boltz2Predictor, tmp_path: Path
) -> None:
    loads = predictor.models_loaded
    out = _run(
        predictor,
        _target(),
        [("aspirin", ASPIRIN), ("benzamidine", "ccd:BEN"), ("strained", UNEMBEDDABLE), ("unknown ccd", "ccd:ZZZ")],
        tmp_path,
    )
    assert predictor.models_loaded == max(loads, 1)
    for bad, words in (("strained", "3D conformer"), ("unknown ccd", "ZZZ not found")):
        assert out[bad].error is not None and out[bad].error.code == "featurisation_failed"
        assert words in out[bad].error.message and not out[bad].error.transient
    for name, heavy in (("aspirin", 13), ("benzamidine", 9)):
        outcome = out[name]
        assert outcome.error is None, outcome.error
        r = outcome.results
        assert set(outcome.files) == {
            "boltz_input.yaml",
            "structure.cif",
            "confidence.json",
            "affinity.json",
            "plddt.npz",
            "pae.npz",
            "pde.npz",
        }
        confidence = json.loads(outcome.files["confidence.json"])
        affinity = json.loads(outcome.files["affinity.json"])
        for key in (
            "confidence_score",
            "ptm",
            "iptm",
            "ligand_iptm",
            "protein_iptm",
            "complex_plddt",
            "complex_iplddt",
            "complex_pde",
            "complex_ipde",
            "chains_ptm",
            "pair_chains_iptm",
        ):
            assert key in confidence  # stored under boltz's own names
            if key.startswith(("chains_", "pair_chains_")):  # keyed by chain id instead of index
                ids = {"0": "A", "1": "B"}
                assert r[key] == {
                    ids[k]: {ids[j]: v for j, v in row.items()} if isinstance(row, dict) else row
                    for k, row in confidence[key].items()
                }
            else:
                assert r[key] == confidence[key]
        for key in (
            "affinity_pred_value",
            "affinity_probability_binary",
            "affinity_pred_value1",
            "affinity_probability_binary1",
            "affinity_pred_value2",
            "affinity_probability_binary2",
        ):
            assert r[key] == affinity[key]
        extra = (set(confidence) | set(affinity)) - set(r)
        assert not extra  # every key boltz wrote, known or not, is kept
        assert set(r["chains_ptm"]) == {"A", "B"}  # keyed by the hub's chain ids: protein A, ligand B
        assert r["ligand_chain"] == "B" and r["tokens"] == len(PEPTIDE) + heavy
        assert r["pic50_derived"] == pytest.approx(6 - r["affinity_pred_value"])
        assert r["delta_g_kcal_mol_derived"] == pytest.approx(-1.36434 * r["pic50_derived"], rel=1e-4)
        assert r["model_weights"] == "random-test-fixture" and r["msa_mode"] == "empty" and "msa_warning" in r
        assert outcome.accelerator_seconds and outcome.accelerator_seconds > 0
        tokens = len(PEPTIDE) + heavy
        plddt = np.load(io.BytesIO(outcome.files["plddt.npz"]))
        pae = np.load(io.BytesIO(outcome.files["pae.npz"]))
        assert plddt[plddt.files[0]].shape == (tokens,) and pae[pae.files[0]].shape == (tokens, tokens)
        structure = gemmi.read_structure(str(_write(tmp_path / f"{name}.cif", outcome.files["structure.cif"])))
        chains = {c.name: c for c in structure[0]}
        assert set(chains) == {"A", "B"} and len(chains["A"]) == len(PEPTIDE)
        assert sum(1 for atom in chains["B"][0]) == heavy
    assert out["benzamidine"].results["seed"] == 42


def test_cancel_and_timeout_stop_one_ligand_and_the_pass_goes_on(
    boltz_cache: Path, predictor: Boltz2Predictor, tmp_path: Path
) -> None:
    out = _run(predictor, _target(), [("a", "CCO"), ("b", "CCN"), ("c", "CCC")], tmp_path / "cancel", stop={"job1"})
    assert set(out) == {"a", "c"} and all(o.error is None for o in out.values())  # b: no outcome = cancelled

    impatient = Boltz2Predictor(Settings(boltz_cache=boltz_cache, boltz_cpu_threads=1, boltz_timeout_seconds=0.01))
    out = _run(impatient, _target(), [("a", "CCO"), ("b", "CCN")], tmp_path / "timeout")
    assert {name: (o.error.code, o.error.transient) for name, o in out.items() if o.error} == {
        "a": ("timeout", True),
        "b": ("timeout", True),
    }


def test_out_of_memory_in_either_pass_fails_only_its_ligand_as_transient(
    predictor: Boltz2Predictor, tmp_path: Path
) -> None:
    """A GPU cannot run out of memory here; torch's own OutOfMemoryError, raised inside the real models'
    forward for one record of each pass, goes through boltz's real catch (it skips the record)."""
    import torch

    predictor._ensure_loaded()
    calls = {"structure": 0, "affinity": 0}

    def fail_first_call(stage: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            calls[stage] += 1
            if calls[stage] == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (test double)")

        return hook

    hooks = [
        predictor._structure.register_forward_pre_hook(fail_first_call("structure")),
        predictor._affinity.register_forward_pre_hook(fail_first_call("affinity")),
    ]
    try:
        out = _run(predictor, _target(), [("a", "CCO"), ("b", "CCN"), ("c", "CCC")], tmp_path)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"structure": 3, "affinity": 2}  # a never reaches the affinity pass
    assert {name: (o.error.code, o.error.transient) for name, o in out.items() if o.error} == {
        "a": ("out_of_memory", True),
        "b": ("out_of_memory", True),
    }
    assert "structure pass" in out["a"].error.message and "affinity pass" in out["b"].error.message
    assert out["c"].error is None and "affinity_pred_value" in out["c"].results


# boltz's run_mmseqs2 reads the a3m files with bare open() (mmseqs2.py, "for line in open(a3m_file)")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_msa_from_a_colabfold_compatible_server_once_per_target(
    boltz_cache: Path, stub_server: Any, tmp_path: Path
) -> None:
    predictor = Boltz2Predictor(Settings(boltz_cache=boltz_cache, boltz_cpu_threads=1, msa_server_url=stub_server.url))
    first = tmp_path / "first"
    first.mkdir()
    artifacts = predictor.prepare_target(_target("server"), first)
    assert [c[:2] for c in stub_server.calls if c[0] == "POST"] == [("POST", "/ticket/msa")]
    assert PEPTIDE in stub_server.calls[0][2] and "mode=env" in stub_server.calls[0][2]
    assert (first / "server_A.a3m").read_text().count(">") == 4 and (first / "server_A.npz").exists()
    assert artifacts.data["info"]["msa_sequences"] == {"A": 4}

    # a second worker finds both files in the target cache (the worker copies them in): no new request
    second = tmp_path / "second"
    shutil.copytree(first, second)
    calls = len(stub_server.calls)
    again = predictor.prepare_target(_target("server"), second)
    assert len(stub_server.calls) == calls and again.data["msa"] == {"A": "server_A.a3m"}

    out = _run(predictor, _target("server"), [("aspirin", ASPIRIN)], tmp_path / "run", affinity=False)
    result = out["aspirin"]
    assert (
        result.error is None and result.results["msa_mode"] == "server" and result.results["msa_sequences"] == {"A": 4}
    )
    assert "msa_warning" not in result.results and "affinity.json" not in result.files
    assert "affinity_pred_value" not in result.results


def test_worker_runs_an_uploaded_msa_target_once_per_target(boltz_cache: Path, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'hub.db'}",
        boltz_cache=boltz_cache,
        boltz_cpu_threads=1,
        default_predictor="boltz2",
    )
    hub = open_hub(settings)
    try:
        a3m = f">query\n{PEPTIDE}\n>hit1\nMKTAYIAKQRQLSFVKSHFSRQ\n>hit2\nMK-AYIAKQRQISFVKSHFSaRQ\n".encode()
        target = hub.create_target(owner="local", name="peptide", protein_sequence=PEPTIDE.lower(), msa=a3m)
        assert target["kind"] == "sequence" and "msa_A.a3m" in target["files"]
        sub = build_batch_submission(
            settings,
            owner="local",
            batch_name="b",
            protein_sequence=None,
            target=target,
            ligands=[("aspirin", ASPIRIN), ("ethanol", "CCO")],
            params=dict(TINY_BOLTZ),
        )
        assert sub.target["msa"] == "upload"
        batch_id = hub.manager.submit_batch(sub).record["job_id"]
        predictor = Boltz2Predictor(settings)
        Worker(settings, hub.manager, hub.store, {"boltz2": predictor}).run(exit_when_idle=True)
        parent = hub.manager.get(batch_id)
        assert (parent["status"], parent["n_completed"]) == ("completed", 2)
        for child in hub.manager.iter_children(batch_id):
            assert child["results"]["msa_mode"] == "upload" and child["results"]["msa_sequences"] == {"A": 3}
            # the pose checks ran on model 0 (random weights: whatever PoseBusters finds is recorded)
            r = child["results"]
            assert "pose_checks_error" not in r, r.get("pose_checks_error")
            assert isinstance(r["pose_checks_passed"], bool) and r["pose_checks_passed"] is (
                r["pose_checks_failed"] == []
            )
            folder = hub.store.job_dir(child["job_id"], batch_id)
            assert "posebusters.csv" in hub.store.list_files(folder)
            # a random-weight protein is not whole: ProLIF says so instead of listing contacts
            assert isinstance(r.get("interactions"), str) or r["interactions_error"].startswith(
                "FragmentedResidueError"
            )
        cached = hub.store.list_files(hub.store.target_cache_dir(hub.manager.get(batch_id)["target_key"]))
        assert {"msa_A.a3m", "msa_A.npz"} <= set(cached)
        ranked = json.loads(hub.store.read_bytes(f"{hub.store.batch_dir(batch_id)}/batch_results.json"))
        assert (ranked["rank_by"], ranked["direction"]) == ("affinity_probability_binary", "desc")
        scores = [row["affinity_probability_binary"] for row in ranked["results"]]
        assert [row["rank"] for row in ranked["results"]] == [1, 2] and scores == sorted(scores, reverse=True)
        # best poses: the co-folded ligand, bond orders from its SMILES, every column an SD property
        sdf = hub.store.read_bytes(f"{hub.store.batch_dir(batch_id)}/best_poses.sdf").decode()
        poses = [m for m in Chem.ForwardSDMolSupplier(io.BytesIO(sdf.encode())) if m is not None]
        assert [m.GetProp("_Name") for m in poses] == [row["ligand_name"] for row in ranked["results"]]
        assert [m.GetNumAtoms() for m in poses] == [
            13 if row["ligand_name"] == "aspirin" else 3 for row in ranked["results"]
        ]
        assert poses[0].GetProp("affinity_probability_binary") and poses[0].GetProp("model_weights")
        # the job page says, above the numbers, that they come from random weights
        key, _ = hub.keys.create("local")
        browser = ApiClient(create_app(hub=hub))
        browser._client.cookies.set(SESSION_COOKIE, hub.keys.session_token(hub.keys.verify(key)))
        page = browser.get(f"/jobs/{ranked['results'][0]['job_id']}").text
        browser.close()
        assert "random-weight test checkpoints" in page and "affinity_probability_binary" in page
    finally:
        hub.close()


def test_submission_checks_for_boltz2(boltz_cache: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", boltz_cache=boltz_cache)
    ok = build_job_submission(
        settings, owner="o", protein_sequence=PEPTIDE, ligand_smiles="ccd:ATP", ligand_name="atp", predictor="boltz2"
    )
    assert ok.params["sampling_steps"] == 200
    assert ok.target == {"msa": "empty", "chains": [{"id": "A", "sequence": PEPTIDE, "msa": "empty"}], "cofactors": []}
    cases = [
        ({"params": {"samples": 3}}, "invalid_params"),
        ({"params": {"msa": "server"}}, "msa_server_not_configured"),
        ({"params": {"sampling_steps": 0}}, "invalid_params"),
        ({"ligand_smiles": "ccd:not a code"}, "invalid_ligand"),
    ]
    for change, code in cases:
        args = {
            "protein_sequence": PEPTIDE,
            "ligand_smiles": ASPIRIN,
            "ligand_name": "x",
            "predictor": "boltz2",
            **change,
        }
        with pytest.raises(InvalidInput) as info:
            build_job_submission(settings, owner="o", **args)
        assert info.value.code == code
    hub = open_hub(settings)
    try:
        with pytest.raises(InvalidInput) as info:
            hub.create_target(owner="o", name="x", protein_sequence=PEPTIDE, msa=b">q\nMKTAYIAKQ\n")
        assert info.value.code == "msa_mismatch"
        with pytest.raises(InvalidInput) as info:
            hub.create_target(owner="o", name="x", protein_sequence=PEPTIDE, msa=b"MKTAYIAKQ\n")
        assert info.value.code == "invalid_msa"
        seq_target = hub.create_target(owner="o", name="x", protein_sequence=PEPTIDE)
        with pytest.raises(InvalidInput) as info:
            build_job_submission(
                settings,
                owner="o",
                protein_sequence=None,
                ligand_smiles=ASPIRIN,
                ligand_name="x",
                predictor="vina",
                target=seq_target,
            )
        assert info.value.code == "target_required"
    finally:
        hub.close()


def test_no_weights_is_a_clear_error_and_fetch_fills_the_cache_from_a_mirror(
    boltz_cache: Path, stub_server: Any, tmp_path: Path
) -> None:
    from omtx_hub.models import boltz2_status, fetch_boltz2

    empty = tmp_path / "empty-cache"
    with pytest.raises(PredictorUnavailable) as info:
        Boltz2Predictor(Settings(boltz_cache=empty))
    assert "omtx-hub models fetch boltz2" in info.value.message and "boltz2_conf.ckpt" in info.value.message

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(boltz_cache / "mols", arcname="mols")
    stub_server.files.update(
        {"boltz2_conf.ckpt": b"conf" * 1000, "boltz2_aff.ckpt": b"aff" * 1000, "mols.tar": buffer.getvalue()}
    )
    lines: list[str] = []
    settings = Settings(boltz_cache=empty, model_mirror_url=stub_server.url)
    status = fetch_boltz2(settings, progress=lines.append)
    assert all(item.present for item in status) and (empty / "boltz2_aff.ckpt").read_bytes() == b"aff" * 1000
    assert not list(empty.glob("*.part")) and len(lines) == 4
    before = len(stub_server.calls)
    fetch_boltz2(settings, progress=lines.append)  # complete: nothing downloaded again
    assert len(stub_server.calls) == before and "nothing to download" in lines[-1]

    stub_server.files.clear()
    (empty / "boltz2_aff.ckpt").unlink()
    with pytest.raises(OSError, match=r"could not download boltz2_aff\.ckpt"):
        fetch_boltz2(settings, progress=lines.append)
    assert [i.name for i in boltz2_status(empty) if not i.present] == ["boltz2_aff.ckpt"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
