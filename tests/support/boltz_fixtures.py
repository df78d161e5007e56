"""Offline fixtures for the real Boltz-2 code path: CCD molecule files and random-weight checkpoints.

Official weights cannot be downloaded here, so the tests (and the GPU benchmark) build their own:

- ``mols/<CODE>.pkl`` for the 21 protein tokens (and any extra CCD code asked for), made from the
  Chemical Component Dictionary that biotite ships in its package data: ideal coordinates, bonds,
  formal charges and hydrogens, with the atom properties boltz reads (``name``, ``leaving_atom``)
  and one conformer named ``Ideal``;
- ``boltz2_conf.ckpt`` and ``boltz2_aff.ckpt``: Lightning checkpoints of ``Boltz2`` with random
  weights, either ``tiny`` (narrow: fast on a CPU) or ``full`` (the published widths and depths, for
  timing only). boltz overrides the trunk depth at load time (64 pairformer blocks), so a small
  model is narrow rather than shallow.

``structure_features`` gives the features boltz's data module makes of a featurised record (what
the structure pass reads), for tests and benchmarks that check what boltz was fed.

Every checkpoint built here carries ``RANDOM_WEIGHTS_MARKER`` at its top level; the ``boltz2``
predictor refuses to pass such a model off as real (it logs an error and stamps every result).
Random-weight outputs are meaningless numbers: tests check files, keys and shapes, never values.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from omtx_hub.models import PROTEIN_TOKENS
from omtx_hub.predictors.boltz2 import RANDOM_WEIGHTS_MARKER

_BOND_ORDERS = {"SING": 1, "DOUB": 2, "TRIP": 3, "QUAD": 4, "AROM": 12}
_SIZES: dict[str, dict[str, int]] = {
    # atom_s, atom_z, token_s, token_z, diffusion transformer depth, confidence and affinity blocks
    "tiny": {
        "atom_s": 16,
        "atom_z": 8,
        "token_s": 32,
        "token_z": 16,
        "diffusion_depth": 1,
        "diffusion_heads": 2,
        "confidence_blocks": 1,
        "affinity_blocks": 1,
        "affinity_s": 32,
        "template_dim": 8,
        "template_blocks": 1,
    },
    "full": {
        "atom_s": 128,
        "atom_z": 16,
        "token_s": 384,
        "token_z": 128,
        "diffusion_depth": 24,
        "diffusion_heads": 16,
        "confidence_blocks": 8,
        "affinity_blocks": 4,
        "affinity_s": 384,
        "template_dim": 64,
        "template_blocks": 2,
    },
}


# ---------------------------------------------------------------------------------------- CCD


def _column(category: Any, name: str) -> list[Any]:
    return list(category[name].as_array())


def build_mols(mol_dir: Path, codes: list[str] | None = None) -> list[Path]:
    """Write one RDKit pickle per CCD code (default: the 21 protein tokens); skip existing files."""
    mol_dir.mkdir(parents=True, exist_ok=True)
    wanted = [c for c in (codes or PROTEIN_TOKENS) if not (mol_dir / f"{c}.pkl").exists()]
    if not wanted:
        return sorted(mol_dir.glob("*.pkl"))
    # imported only when a file is missing: a machine given ready mols/ (the GPU bench's) needs no biotite
    import biotite.structure.info as info
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    ccd = info.get_ccd()
    atoms, bonds = ccd["chem_comp_atom"], ccd["chem_comp_bond"]
    atom_comp = np.array(_column(atoms, "comp_id"))
    bond_comp = np.array(_column(bonds, "comp_id"))
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    for code in wanted:
        rows = np.flatnonzero(atom_comp == code)
        if rows.size == 0:
            raise KeyError(f"CCD has no component {code!r}")
        names = [str(atoms["atom_id"].as_array()[i]) for i in rows]
        elements = [str(atoms["type_symbol"].as_array()[i]).capitalize() for i in rows]
        charges = [int(atoms["charge"].as_array()[i]) for i in rows]
        leaving = [str(atoms["pdbx_leaving_atom_flag"].as_array()[i]) == "Y" for i in rows]
        xyz = np.stack([atoms[f"pdbx_model_Cartn_{a}_ideal"].as_array()[rows] for a in "xyz"], axis=1)
        mol = Chem.RWMol()
        for name, element, charge, leave in zip(names, elements, charges, leaving, strict=True):
            atom = Chem.Atom(element)
            atom.SetFormalCharge(charge)
            atom.SetProp("name", name)
            atom.SetProp("leaving_atom", "1" if leave else "0")
            mol.AddAtom(atom)
        index = {name: i for i, name in enumerate(names)}
        for j in np.flatnonzero(bond_comp == code):
            a1, a2 = str(bonds["atom_id_1"].as_array()[j]), str(bonds["atom_id_2"].as_array()[j])
            order = _BOND_ORDERS[str(bonds["value_order"].as_array()[j]).upper()]
            mol.AddBond(index[a1], index[a2], Chem.BondType.values[order])
        conformer = Chem.Conformer(len(names))
        for i, (x, y, z) in enumerate(xyz.astype(float)):
            conformer.SetAtomPosition(i, Point3D(x, y, z))
        conformer.SetProp("name", "Ideal")
        mol.AddConformer(conformer, assignId=True)
        final = mol.GetMol()
        Chem.SanitizeMol(final)
        with (mol_dir / f"{code}.pkl").open("wb") as handle:
            pickle.dump(final, handle)
    return sorted(mol_dir.glob("*.pkl"))


# ---------------------------------------------------------------------------------- checkpoints


def hyper_parameters(size: str, affinity: bool) -> dict[str, Any]:
    """Boltz2 constructor arguments for a random model of ``size`` (``tiny`` or ``full``)."""
    from omegaconf import OmegaConf

    s = _SIZES[size]
    pairformer = {
        "num_blocks": s["confidence_blocks"],
        "num_heads": 16 if size == "full" else 2,
        "dropout": 0.0,
        "activation_checkpointing": False,
        "v2": True,
    }
    params: dict[str, Any] = {
        "atom_s": s["atom_s"],
        "atom_z": s["atom_z"],
        "token_s": s["token_s"],
        "token_z": s["token_z"],
        "num_bins": 64,
        "atom_feature_dim": 388,  # 3 position + 1 charge + 128 element + 4×64 atom-name characters
        "training_args": OmegaConf.create(
            {
                "max_lr": 1e-3,
                "weight_decay": 0.0,
                "diffusion_multiplicity": 1,
                "recycling_steps": 0,
                "diffusion_loss_weight": 1.0,
            }
        ),
        "validation_args": {},
        "embedder_args": {
            "atom_encoder_depth": 1,
            "atom_encoder_heads": 2,
            "add_method_conditioning": True,
            "add_modified_flag": True,
            "add_cyclic_flag": True,
            "add_mol_type_feat": True,
        },
        "msa_args": {},  # replaced by boltz at load time
        "pairformer_args": {},  # replaced by boltz at load time
        "score_model_args": {
            "sigma_data": 16,
            "dim_fourier": 256,
            "atom_encoder_depth": 1,
            "atom_encoder_heads": 2,
            "token_transformer_depth": s["diffusion_depth"],
            "token_transformer_heads": s["diffusion_heads"],
            "atom_decoder_depth": 1,
            "atom_decoder_heads": 2,
            "conditioning_transition_layers": 2,
        },
        "diffusion_process_args": {},  # replaced by boltz at load time
        "diffusion_loss_args": {},
        "confidence_model_args": {
            "num_dist_bins": 64,
            "max_dist": 22,
            "add_s_to_z_prod": True,
            "add_s_input_to_s": True,
            "add_z_input_to_z": True,
            "confidence_args": {"num_plddt_bins": 50, "num_pde_bins": 64, "num_pae_bins": 64},
            "pairformer_args": pairformer,
        },
        "use_templates": True,  # the template module, so template tests run it
        "use_templates_v2": True,
        "template_args": {
            "template_dim": s["template_dim"],
            "template_blocks": s["template_blocks"],
            "pairwise_head_width": 32 if size == "full" else 8,
            "pairwise_num_heads": 4 if size == "full" else 2,
            "dropout": 0.0,
        },
        "confidence_prediction": True,
        "alpha_pae": 1.0,  # 0 would drop pTM/ipTM from the confidence output
        "validate_structure": False,
        "structure_prediction_training": False,
        "fix_sym_check": True,
        "cyclic_pos_enc": True,
        "ema": False,
    }
    if affinity:
        head = {
            "pairformer_args": {**pairformer, "num_blocks": s["affinity_blocks"]},
            "transformer_args": {
                "token_s": s["affinity_s"],
                "num_blocks": s["affinity_blocks"],
                "num_heads": 2,
                "activation_checkpointing": False,
            },
        }
        params.update(
            {
                "affinity_prediction": True,
                "affinity_ensemble": True,
                "affinity_model_args1": head,
                "affinity_model_args2": head,
            }
        )
    return params


def build_checkpoint(path: Path, size: str = "tiny", affinity: bool = False, seed: int = 0) -> Path:
    """Write a random-weight Boltz2 Lightning checkpoint to ``path`` (marked as random)."""
    from dataclasses import asdict

    import pytorch_lightning
    import torch
    from boltz.main import Boltz2DiffusionParams, BoltzSteeringParams, MSAModuleArgs, PairformerArgsV2
    from boltz.model.models.boltz2 import Boltz2

    torch.manual_seed(seed)
    params = hyper_parameters(size, affinity)
    runtime = {
        "msa_args": asdict(MSAModuleArgs(use_paired_feature=True)),
        "pairformer_args": asdict(PairformerArgsV2()),
        "diffusion_process_args": asdict(Boltz2DiffusionParams()),
        "steering_args": asdict(BoltzSteeringParams()),
    }
    model = Boltz2(**{**params, **runtime})
    state = model.state_dict()
    for name, tensor in state.items():
        # boltz zero-initialises many output layers; small random values keep outputs non-degenerate
        if tensor.is_floating_point() and tensor.numel() and not tensor.any():
            state[name] = torch.randn_like(tensor) * 0.02
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {**params, **runtime},
            "pytorch-lightning_version": pytorch_lightning.__version__,
            RANDOM_WEIGHTS_MARKER: True,
        },
        tmp,
    )
    tmp.replace(path)
    return path


def build_cache(cache: Path, size: str = "tiny", extra_codes: list[str] | None = None) -> Path:
    """A boltz cache folder with mols/ and both random checkpoints; reused when already built."""
    stamp = cache / "fixture.json"
    want = {"size": size, "codes": sorted([*PROTEIN_TOKENS, *(extra_codes or [])]), "version": 2}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return cache
    build_mols(cache / "mols", want["codes"])
    build_checkpoint(cache / "boltz2_conf.ckpt", size, affinity=False, seed=0)
    build_checkpoint(cache / "boltz2_aff.ckpt", size, affinity=True, seed=1)
    stamp.write_text(json.dumps(want))
    return cache


def structure_features(dirs: Any, mol_dir: Path, record_id: str = "r0") -> dict[str, Any]:
    """The structure-pass features of one record the predictor featurised into ``dirs`` (its
    ``_Dirs``), made by boltz's own inference data module, as in the pass."""
    from boltz.data.module.inferencev2 import Boltz2InferenceDataModule
    from boltz.data.types import Manifest, Record

    data = Boltz2InferenceDataModule(
        manifest=Manifest([Record.load(dirs.records / f"{record_id}.json")]),
        target_dir=dirs.structures,
        msa_dir=dirs.msa,
        mol_dir=mol_dir,
        num_workers=0,
        batch_size=1,
        constraints_dir=dirs.constraints,
        template_dir=dirs.templates,
        extra_mols_dir=dirs.mols,
        affinity=False,
        pin_memory=False,
    )
    features: dict[str, Any] = next(iter(data.predict_dataloader()))
    return features
