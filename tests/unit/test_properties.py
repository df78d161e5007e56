"""Property-based tests (hypothesis) of everything that reads untrusted input."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdkit import Chem

from omtx_hub.chem import AMINO_ACIDS, check_smiles, clean_protein_sequence
from omtx_hub.errors import InvalidInput
from omtx_hub.ligand_files import read_ligands
from omtx_hub.presenters import decode_cursor, encode_cursor
from omtx_hub.storage import is_safe_file_name
from omtx_hub.targets import prepare_target_files

# derandomize: the same examples on every run, so CI cannot turn red by chance; the examples still
# cover the space (hypothesis' own generation, including its edge cases)
FAST = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FAST
@given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
def test_protein_sequence_is_clean_or_a_value_error(raw: str, limit: int) -> None:
    try:
        sequence = clean_protein_sequence(raw, limit)
    except ValueError:
        return
    assert sequence and len(sequence) <= limit and set(sequence) <= AMINO_ACIDS


@FAST
@given(st.text(max_size=120) | st.text(alphabet="CNOSPFclBr()[]=#@+-123456789%/\\.", max_size=80))
def test_smiles_check_never_raises(smiles: str) -> None:
    result = check_smiles(smiles, max_heavy_atoms=64)
    assert isinstance(result.ok, bool) and (result.ok or result.reason)


_SEEDS = (
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "O=[N+]([O-])c1ccc(cc1)S(=O)(=O)N",
    "C[C@H](N)C(=O)O",
    "F/C=C/F",
    "CN(=O)=O",
    "[Fe+2].[O-]C(=O)C",
    "OB(O)c1ccccc1",
    "c1cc[se]c1",
    "[O-][n+]1ccccc1",
    "c1cnc[nH]1",
    "[2H]C([2H])([2H])c1ccccc1",
)
_PIECES = [*"CNOSPFIclnosBr()[]=#@+-123456789%/\\.H", "[nH]", "[O-]", "[N+]", "Cl", "[Fe]", "[se]", "[2H]"]


@st.composite
def _edited_smiles(draw: st.DrawFn) -> str:
    """A drug-like, charged, isotopic or organometallic SMILES with up to three characters inserted,
    deleted or replaced: mostly invalid, in every way a valid one can be broken."""
    text = list(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        if edit == "insert":
            text.insert(at, draw(st.sampled_from(_PIECES)))
        elif text:
            if edit == "delete":
                del text[min(at, len(text) - 1)]
            else:
                text[min(at, len(text) - 1)] = draw(st.sampled_from(_PIECES))
    return "".join(text)


@settings(max_examples=3000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_edited_smiles() | st.text(alphabet="CNOSPFclnBr()[]=#@+-123456789%/\\.H", max_size=40))
def test_the_smiles_check_accepts_nothing_a_full_parse_refuses(smiles: str) -> None:
    """The check sanitises without removing hydrogens or perceiving stereochemistry (half the cost):
    whatever it accepts, RDKit's full MolFromSmiles accepts too."""
    if check_smiles(smiles, max_heavy_atoms=10**6).ok:
        assert Chem.MolFromSmiles(smiles.strip()) is not None


@FAST
@given(st.text(max_size=80))
def test_safe_file_names_cannot_leave_the_folder(name: str) -> None:
    if is_safe_file_name(name):
        assert "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name


@FAST
@given(st.text(max_size=40))
def test_cursors_decode_or_raise_invalid_input(text: str) -> None:
    try:
        decode_cursor(text)
    except InvalidInput:
        pass


@FAST
@given(st.integers(min_value=-1, max_value=2**62))
def test_cursors_round_trip(value: int) -> None:
    assert decode_cursor(encode_cursor(value)) == value


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.binary(max_size=2000),
    st.sampled_from(["r.pdb", "r.cif", "r.txt", "r"]),
    st.dictionaries(
        st.sampled_from(["mode", "center", "size", "residues", "padding"]),
        st.one_of(st.text(max_size=10), st.floats(allow_nan=True), st.lists(st.floats(), max_size=4)),
    ),
)
def test_target_files_are_accepted_or_rejected_as_invalid_input(data: bytes, name: str, site: dict) -> None:  # type: ignore[type-arg]
    try:
        prepare_target_files(data, name, site)
    except InvalidInput:
        pass


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=string.printable, max_size=400), st.sampled_from([".csv", ".smi", ".sdf"]))
def test_ligand_files_parse_or_raise_value_error(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"l{suffix}"
        path.write_text(text)
        try:
            ligands = read_ligands(path)
        except ValueError:
            return
        assert all(isinstance(n, str) and isinstance(s, str) for n, s in ligands)
