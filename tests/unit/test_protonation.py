"""The dominant protonation state at pH 7.4 of drugs whose state is known (charge and the charged
atom asserted), and how the state moves with the pH."""

from __future__ import annotations

import pytest

from omtx_hub.predictors.protonation import dominant_state

AT_7_4 = [
    # name, SMILES, formal charge, the docked form
    ("paracetamol", "CC(=O)Nc1ccc(O)cc1", 0, "CC(=O)Nc1ccc(O)cc1"),  # phenol pKa 9.5: neutral
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", -1, "CC(C)Cc1ccc(C(C)C(=O)[O-])cc1"),
    ("ibuprofen sodium", "CC(C)Cc1ccc(cc1)C(C)C(=O)[O-].[Na+]", -1, "CC(C)Cc1ccc(C(C)C(=O)[O-])cc1"),
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O", -1, "CC(=O)Oc1ccccc1C(=O)[O-]"),
    (  # only the distal N-methyl piperazine nitrogen: the benzylic one's second protonation is ≈ pKa 4
        "imatinib",
        "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
        1,
        "Cc1ccc(NC(=O)c2ccc(CN3CC[NH+](C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    ),
    (
        "bosutinib",
        "COc1cc(Nc2c(C#N)cnc3cc(OCCCN4CCN(C)CC4)c(OC)cc23)c(Cl)cc1Cl",
        1,
        "COc1cc(Nc2c(C#N)cnc3cc(OCCCN4CC[NH+](C)CC4)c(OC)cc23)c(Cl)cc1Cl",
    ),
    ("caffeine", "Cn1c(=O)c2c(ncn2C)n(C)c1=O", 0, "Cn1c(=O)c2c(ncn2C)n(C)c1=O"),
    ("amphetamine", "CC(N)Cc1ccccc1", 1, "CC([NH3+])Cc1ccccc1"),
    ("gefitinib (morpholine pKa 7.2)", "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1", 0, None),
    (
        "nilotinib (imidazole pKa 5.4)",
        "Cc1cn(cn1)-c1cc(NC(=O)c2ccc(C)c(Nc3nccc(n3)-c3cccnc3)c2)cc(c1)C(F)(F)F",
        0,
        None,
    ),
    (  # zwitterion: the carboxylate and the distal piperazine nitrogen, not the benzhydryl one
        "cetirizine",
        "OC(=O)COCCN1CCN(CC1)C(c1ccccc1)c1ccc(Cl)cc1",
        0,
        "O=C([O-])COCC[NH+]1CCN(C(c2ccccc2)c2ccc(Cl)cc2)CC1",
    ),
    ("histamine (imidazole neutral)", "NCCc1c[nH]cn1", 1, "[NH3+]CCc1c[nH]cn1"),
    ("nicotine (pyridine neutral)", "CN1CCCC1c1cccnc1", 1, "C[NH+]1CCCC1c1cccnc1"),
    ("lysine", "NCCCCC(N)C(=O)O", 1, "[NH3+]CCCCC([NH3+])C(=O)[O-]"),  # 1,5-diamine: both charged
]


@pytest.mark.parametrize(("name", "smiles", "charge", "form"), AT_7_4, ids=[row[0] for row in AT_7_4])
def test_dominant_state_at_physiological_ph(name: str, smiles: str, charge: int, form: str | None) -> None:
    state = dominant_state(smiles, 7.4)
    assert state.formal_charge == charge, state
    if form is not None:
        assert state.smiles == form


def test_the_state_follows_the_ph() -> None:
    assert dominant_state("CC(C)Cc1ccc(cc1)C(C)C(=O)O", 3.0).formal_charge == 0  # below the acid's pKa
    assert dominant_state("CC(=O)Nc1ccc(O)cc1", 11.0).formal_charge == -1  # above the phenol's
    assert dominant_state("CC(N)Cc1ccccc1", 11.5).formal_charge == 0  # above the amine's
    with pytest.raises(ValueError, match="could not parse"):
        dominant_state("not a smiles(", 7.4)


def test_likely_states_flip_the_groups_near_the_ph_after_the_dominant_one() -> None:
    from omtx_hub.predictors.protonation import likely_states

    gefitinib = likely_states("COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1", 7.4, 3)
    assert [s.formal_charge for s in gefitinib] == [0, 1]  # the morpholine (pKa 7.4) either way
    histamine = likely_states("NCCc1c[nH]cn1", 7.4, 3)
    assert [s.formal_charge for s in histamine] == [1, 2] and histamine[1].smiles == "[NH3+]CCc1c[nH]c[nH+]1"
    assert [s.formal_charge for s in likely_states("Cn1c(=O)c2c(ncn2C)n(C)c1=O", 7.4, 3)] == [0]  # fused: no flip
    assert len(likely_states("NCCc1c[nH]cn1", 7.4, 1)) == 1
