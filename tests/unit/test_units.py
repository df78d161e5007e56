"""Pure units: retry policy, validators, ligand files, cursors, storage, registry, public surface."""

from __future__ import annotations

import re
from pathlib import Path

import pandas  # noqa: F401  (pyarrow imports it at its first from_pandas conversion; see below)
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdkit import Chem

import omtx_hub
from omtx_hub import client, errors, queue
from omtx_hub.analytics.writers import _cell, _column
from omtx_hub.chem import check_smiles, clean_protein_sequence
from omtx_hub.errors import InvalidInput, NotFound, PayloadTooLarge, PredictorUnavailable, StorageError
from omtx_hub.ligand_files import read_ligands
from omtx_hub.presenters import decode_cursor, encode_cursor
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.registry import available_predictors, load_predictor
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore, is_safe_file_name
from omtx_hub.submission import build_batch_submission


def test_retry_policy_backs_off_exponentially_and_stops() -> None:
    policy = RetryPolicy(base_seconds=5, max_delay_seconds=12)
    assert [policy.decide(attempt=a, max_attempts=4, transient=True).delay_seconds for a in (1, 2, 3)] == [5, 10, 12]
    assert not policy.decide(attempt=4, max_attempts=4, transient=True).retry
    assert not policy.decide(attempt=1, max_attempts=4, transient=False).retry


@pytest.mark.parametrize("raw", ["mktayi", " MKT AYI\n", "MKTX"])
def test_protein_sequences_accepted(raw: str) -> None:
    assert clean_protein_sequence(raw, 100) == raw.upper().replace(" ", "").replace("\n", "")


@pytest.mark.parametrize(
    ("raw", "words"), [("", "empty"), ("MKT*", "position 4"), ("ACGU1", "not amino-acid"), ("M" * 11, "limit is 10")]
)
def test_protein_sequences_rejected(raw: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        clean_protein_sequence(raw, 10)


@pytest.mark.parametrize(
    ("smiles", "ok"),
    [
        ("CCO", True),
        ("c1ccccc1", True),
        ("[Na+].[Cl-]", True),
        ("C1CC", False),
        ("c1cccc1", False),
        ("", False),
        ("C C", False),
        ("[H][H]", False),
        ("C(C)(C)(C)(C)C", False),  # a carbon of valence 5
        ("cC", False),  # an aromatic atom outside a ring
        ("n1cccc1", False),  # pyrrole without its H: no Kekulé form
        ("[nH]1cccc1", True),
        ("CN(=O)=O", True),  # nitro, written pentavalent: cleaned up
        ("[Fe+2].[O-]C(=O)C", True),
        ("[O-][n+]1ccccc1", True),
        ("C[C@H](N)C(=O)O", True),
        ("F/C=C/F", True),
    ],
)
def test_smiles_check(smiles: str, ok: bool) -> None:
    assert check_smiles(smiles).ok is ok
    if smiles and " " not in smiles:  # as RDKit's full parse decides (which reads "C C" as C named "C")
        mol = Chem.MolFromSmiles(smiles)
        assert (mol is not None and mol.GetNumHeavyAtoms() > 0) is ok


@pytest.mark.parametrize(
    ("smiles", "ok"),
    [
        ("CCCCC", True),
        ("CCCCCC", False),
        ("CCCCC.CCCCC.O", True),
        ("CCCCCC.[Na+]", False),
        ("[2H]C([2H])([2H])CCCC", True),
    ],
)
def test_the_heavy_atom_limit_applies_to_the_largest_fragment(smiles: str, ok: bool) -> None:
    assert check_smiles(smiles, max_heavy_atoms=5).ok is ok


def test_batch_validation_reports_everything_and_respects_limits() -> None:
    settings = Settings(predictor_plugins={"test": "x:y"}, default_predictor="test", max_batch_size=3)
    with pytest.raises(PayloadTooLarge):
        build_batch_submission(
            settings, owner="local", batch_name="b", protein_sequence="MKT", ligands=[("a", "C")] * 4
        )
    with pytest.raises(InvalidInput) as caught:
        build_batch_submission(
            settings,
            owner="local",
            batch_name="b",
            protein_sequence="MKT",
            ligands=[("a", "C"), ("", "CC"), ("a", "C1")],
        )
    assert [p["index"] for p in caught.value.details["ligands"]] == [1, 2, 2]
    sub = build_batch_submission(
        settings,
        owner="local",
        batch_name=" b ",
        protein_sequence="mkt",
        ligands=[("a", "C"), ("b", "C1")],
        skip_invalid=True,
    )
    assert [lig.name for lig in sub.ligands] == ["a"] and sub.skipped[0]["index"] == 1
    assert sub.protein_sequence == "MKT" and sub.batch_name == "b"


def test_ligand_files(tmp_path: Path) -> None:
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("ID,SMILES\nasp,CC(=O)Oc1ccccc1C(=O)O\n,CCO\n")
    assert read_ligands(csv_file) == [("asp", "CC(=O)Oc1ccccc1C(=O)O"), ("ligand_2", "CCO")]
    smi = tmp_path / "l.smi"
    smi.write_text("# comment\nCCO ethanol\n\nc1ccccc1\tbenzene ring\nCC\n")
    assert read_ligands(smi) == [("ethanol", "CCO"), ("benzene ring", "c1ccccc1"), ("ligand_5", "CC")]
    sdf = tmp_path / "l.sdf"
    sdf.write_text((Path(__file__).parents[1] / "support" / "two.sdf").read_text())
    assert read_ligands(sdf) == [("ethanol", "CCO"), ("ligand_2", "C")]
    with pytest.raises(ValueError, match="no SMILES column"):
        (tmp_path / "x.csv").write_text("a,b\n1,2\n")
        read_ligands(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unknown ligand file type"):
        read_ligands(tmp_path / "x.xlsx")


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    assert decode_cursor(None) is None
    with pytest.raises(InvalidInput):
        decode_cursor("not-a-cursor!")


@pytest.mark.parametrize("n", [3, 20])  # a few: fsync of each file and folder; many: one syncfs
def test_deferred_writes_are_complete_files_and_sync_once(tmp_path: Path, n: int) -> None:
    store = ResultStore(str(tmp_path / "r"))
    files = {f"batches/b/jobs/job_{i}/results.json": f'{{"i": {i}}}'.encode() for i in range(n)}
    store.write_many(files, durable=False)
    assert all(store.read_bytes(path) == data for path, data in files.items())
    assert not list((tmp_path / "r").rglob("*.tmp-*"))  # renamed into place, nothing half-written left
    store.sync()
    store.sync()  # nothing pending: a no-op
    assert all(store.read_bytes(path) == data for path, data in files.items())


def test_sync_reports_a_file_it_could_not_make_durable(tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "r"))
    store.write_many({"jobs/job_a/a.json": b"1", "jobs/job_a/b.json": b"2"}, durable=False)
    (tmp_path / "r" / "jobs" / "job_a" / "b.json").unlink()  # gone before the barrier
    with pytest.raises(StorageError, match="durable"):
        store.sync()


def test_storage_layout_and_atomic_writes(tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "r"))
    assert store.job_dir("job_a") == "jobs/job_a"
    assert store.job_dir("job_a", "batch_b") == "batches/batch_b/jobs/job_a"
    store.write_json("jobs/job_a/results.json", {"x": 1})
    assert store.list_files("jobs/job_a") == ["results.json"]
    assert list((tmp_path / "r" / "jobs" / "job_a").iterdir()) == [tmp_path / "r" / "jobs" / "job_a" / "results.json"]
    assert store.read_bytes("jobs/job_a/results.json").startswith(b"{")
    assert store.list_files("jobs/none") == []
    store.delete_dir("jobs/job_a")  # pruned: the next write recreates the folder
    store.write_json("jobs/job_a/results.json", {"x": 2})
    assert store.read_bytes("jobs/job_a/results.json").startswith(b"{")
    with pytest.raises(NotFound):
        store.job_dir("../etc")
    assert not is_safe_file_name("../x") and not is_safe_file_name(".hidden") and is_safe_file_name("poses.sdf")


def test_registry_messages(tmp_path: Path) -> None:
    settings = Settings(predictor_plugins={"broken": "no_such_module_xyz:make", "attr": "json:nothing"})
    assert {"broken", "attr"} <= set(available_predictors(settings))
    with pytest.raises(PredictorUnavailable, match="pip install"):
        load_predictor("broken", settings)
    with pytest.raises(PredictorUnavailable, match="no attribute"):
        load_predictor("attr", settings)
    with pytest.raises(PredictorUnavailable, match="is installed"):
        load_predictor("nope", settings)


def test_public_surface() -> None:
    assert omtx_hub.__all__ == ["__version__"]
    assert set(queue.__all__) == {
        "BatchSubmission",
        "Finished",
        "JobSubmission",
        "QueueManager",
        "RetryDecision",
        "RetryPolicy",
        "Submitted",
    }
    assert set(client.__all__) == {"HubClient", "HubError"}
    assert all(issubclass(getattr(errors, n), errors.OmtxError) for n in errors.__all__)


def test_client_imports_nothing_of_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, omtx_hub.client; "
        "print(sorted(m for m in sys.modules if m.startswith('omtx_hub') or m in ('sqlalchemy', 'fastapi', 'rdkit')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['omtx_hub', 'omtx_hub.client']"


_CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@given(st.lists(_CELLS, max_size=8), st.sampled_from(["double", "string", "bool"]))
def test_a_parquet_column_holds_what_each_cell_would(values: list[object], kind: str) -> None:
    """The export converts a column of values at once when their types allow; cell by cell otherwise.
    Both give the same column (NaN a null, text in a number column a null, a huge integer rounded).
    (pyarrow, pandas and the writers are imported with this module: imports inside the first example,
    pandas by pyarrow's first ``from_pandas`` conversion, took it to 0.4 s under load, past
    Hypothesis's deadline, and the test failed as flaky.)"""
    arrow_type = {"double": pa.float64(), "string": pa.string(), "bool": pa.bool_()}[kind]
    assert _column(values, arrow_type).to_pylist() == [_cell(v, arrow_type) for v in values]


def test_ids_made_together_look_like_ids_made_one_by_one() -> None:
    from omtx_hub.queue.types import new_id, new_ids

    shape = re.compile(r"job_[A-Za-z0-9_-]{20}")
    made = new_ids("job", 1000)
    assert len(set(made)) == 1000 and all(shape.fullmatch(i) for i in made)
    assert shape.fullmatch(new_id("job")) and new_ids("job", 0) == []
