"""Required interactions: the text form, what is refused, and what a pose must show to be ranked."""

from __future__ import annotations

import pytest

from omtx_hub.analytics import RankingRules
from omtx_hub.errors import InvalidInput
from omtx_hub.interactions import parse_requirements

CONTACTS = "A:MET318:HBAcceptor, A:THR315:HBDonor, A:LEU248:Hydrophobic"


def test_requirements_by_residue_or_by_type() -> None:
    hinge, any_leu, wrong_type = parse_requirements(["A:MET318:HBAcceptor", "A:LEU248", "A:THR315:HBAcceptor"])
    contacts = set(CONTACTS.split(", "))
    assert hinge.met_by(contacts) and any_leu.met_by(contacts)  # a residue alone: any contact, hydrophobic too
    assert not wrong_type.met_by(contacts)  # Thr315 is there, as a donor
    assert str(hinge) == "A:MET318:HBAcceptor" and str(any_leu) == "A:LEU248"


def test_every_bad_entry_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_requirements(["MET318", "A:MET318:HBFoo", "A:GLY999", "A:MET318"], residues={"A:MET318"})
    assert refused.value.code == "invalid_required_interactions"
    reasons = {p["entry"]: p["reason"] for p in refused.value.details["required_interactions"]}
    assert set(reasons) == {"MET318", "A:MET318:HBFoo", "A:GLY999"}
    assert "CHAIN:RESIDUE" in reasons["MET318"] and "unknown interaction type" in reasons["A:MET318:HBFoo"]
    assert reasons["A:GLY999"] == "the target has no residue A:GLY999"


def test_ranking_rules_admit_only_poses_that_show_what_is_required() -> None:
    hinge = RankingRules(tuple(parse_requirements(["A:MET318:HBAcceptor"])))
    checked = RankingRules(pose_checks="require")
    good = {"interactions": CONTACTS, "pose_checks_passed": True}
    clash = {"interactions": CONTACTS, "pose_checks_passed": False}
    elsewhere = {"interactions": "A:ASP381:HBAcceptor", "pose_checks_passed": True}
    unchecked = {"vina_score_kcal_mol": -9.0}  # no pose checks ran (OMTX_POSE_CHECKS=false)
    assert hinge.admit(good) and hinge.admit(clash) and not hinge.admit(elsewhere) and not hinge.admit(unchecked)
    assert checked.admit(good) and not checked.admit(clash) and not checked.admit(unchecked)
    assert RankingRules().admit(unchecked)
    assert RankingRules.of_batch({"input": {"ranking": hinge.as_document()}}) == hinge
    assert RankingRules.of_batch({"input": {}}) == RankingRules()
