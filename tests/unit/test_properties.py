"""Property-based tests (hypothesis) of everything that reads untrusted input."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
