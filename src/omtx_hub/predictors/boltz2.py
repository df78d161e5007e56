"""The ``boltz2`` predictor: Boltz-2 co-folding and binding affinity, through ``boltz-community``.

This is the only module that runs boltz, and it stays one module on purpose (about 800
lines, over the ~600 the house style allows; what a job gives boltz is decided, without boltz, in
``boltz2_input.py``): boltz is pinned, its quirks are isolated here, and
splitting it would spread that knowledge over several files. How it uses boltz, and why:

- **Resident models.** The structure/confidence model and the affinity model are loaded once per
  worker process, on the first micro-batch (``Boltz2.load_from_checkpoint`` with the same load-time
  arguments as ``boltz predict``), and kept. ``models_loaded`` counts loads; the log says each one.
- **One pass per micro-batch.** The worker claims several ligands of one target; each becomes a
  boltz record (its YAML written with PyYAML, featurised with boltz's own ``process_input``), and
  all records run through one ``Trainer.predict`` over boltz's ``Boltz2InferenceDataModule`` —
  the same data module and writers as boltz's directory mode — then one affinity pass. Records are
  fed one at a time (batch size 1), as ``boltz predict`` does by default.
- **Per-target work once.** ``prepare_target`` resolves each chain's MSA (``empty``, an uploaded
  ``msa_<chain>.a3m``, or the MSA server, once per distinct sequence) and parses each once into
  ``<name>.npz``; the worker publishes them to ``cache/targets/{key}/``, so other workers reuse them.
  Each record links those files in place of boltz's own per-record MSA parsing.
- **The whole complex.** Each record's document comes from the job's plan (every protein chain,
  cofactors, pocket, covalent bond, template; ``boltz2_input.boltz_document``) and is kept as
  ``boltz_input.yaml`` and in ``input.json``; per-chain scores are re-keyed by chain id.
- **Failure isolation.** A ligand boltz cannot featurise fails alone (``featurisation_failed``),
  before any model work. An out-of-memory in one record, in the structure or the affinity pass
  (boltz catches it and writes nothing), fails that job as transient (the retry policy applies).
  A record running past ``OMTX_BOLTZ_TIMEOUT_SECONDS`` or cancelled is stopped at the next module
  call (a forward pre-hook raises), and the pass resumes with the records after it. Any other
  exception inside the pass fails the record it happened in, and the rest of the micro-batch runs on.
- **Seeds.** The diffusion noise of each record is seeded from its job's ``seed`` when the record
  starts, so a ligand's result does not depend on which others shared its micro-batch.
- **Process-wide state.** Loading sets what ``boltz predict`` sets (no grad, fp32 matmul precision,
  RDKit pickle options, ``CUEQ_*`` variables, torch threads on CPU): a worker is its own process
  (``serve`` runs its worker as a child process), so none of it reaches the API.
- **Random weights.** A checkpoint carrying ``RANDOM_WEIGHTS_MARKER`` (the test fixtures build
  such files) is loaded with an error in the log, and every result says ``model_weights:
  random-test-fixture``: such numbers are never predictions.

Results keep every field of boltz's ``confidence_*.json`` and ``affinity_*.json`` under its own name
(unknown keys from newer versions included), plus values labelled as derived, see ``_derived``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import yaml

from omtx_hub.domain import Target
from omtx_hub.errors import PermanentPredictionError, PredictorUnavailable, TransientPredictionError
from omtx_hub.models import missing_boltz2_message
from omtx_hub.predictors.base import Outcome, PredictionTask, TargetArtifacts
from omtx_hub.predictors.boltz2_input import boltz_document, chain_letters
from omtx_hub.predictors.boltz2_spec import BOLTZ2, Boltz2Params
from omtx_hub.settings import Settings

__all__ = ["RANDOM_WEIGHTS_MARKER", "Boltz2Predictor", "make_boltz2_predictor"]

logger = logging.getLogger("omtx_hub.predictors.boltz2")

RANDOM_WEIGHTS_MARKER = "omtx_random_weights"
RT_LN10_KCAL_MOL = 1.987204e-3 * 298.15 * math.log(10)  # kcal/mol per log10 unit at 25 °C
_PASS_KEYS = (
    "recycling_steps",
    "sampling_steps",
    "diffusion_samples",
    "step_scale",
    "affinity",
    "sampling_steps_affinity",
    "diffusion_samples_affinity",
    "affinity_mw_correction",
    "use_potentials",
    "output_format",
    "method",
)
_MAX_PARALLEL_SAMPLES = 5  # boltz predict's default


def make_boltz2_predictor(settings: Settings) -> Boltz2Predictor:
    return Boltz2Predictor(settings)


class _Abort(Exception):
    """Raised inside the model (by a forward pre-hook) to stop the record that is running."""

    def __init__(self, record_id: str, reason: Literal["timeout", "cancelled"]) -> None:
        super().__init__(f"{record_id}: {reason}")
        self.record_id, self.reason = record_id, reason


class _Watch:
    """Which record is running, since when, and whether it must stop (checked by the forward hooks)."""

    def __init__(self, timeout: float, should_stop: Callable[[str], bool]) -> None:
        self.timeout, self.should_stop = timeout, should_stop
        self.record: str | None = None
        self.started = 0.0
        self.seconds: dict[str, float] = {}
        self._last_check = 0.0

    def begin(self, record_id: str) -> None:
        self.record, self.started = record_id, time.monotonic()

    def end(self) -> None:
        if self.record is not None:
            self.seconds[self.record] = self.seconds.get(self.record, 0.0) + time.monotonic() - self.started
        self.record = None

    def check(self, *_: Any) -> None:
        if self.record is None:
            return
        now = time.monotonic()
        if now - self.started > self.timeout:
            raise _Abort(self.record, "timeout")
        if now - self._last_check > 0.5:  # should_stop takes a lock; ask twice a second at most
            self._last_check = now
            if self.should_stop(self.record):
                raise _Abort(self.record, "cancelled")


class Boltz2Predictor:
    name = BOLTZ2.name
    primary_score = BOLTZ2.primary  # declared with its fields in boltz2_spec.py
    other_scores = BOLTZ2.sortable  # kept indexed too (job_scores)
    score_direction: Literal["asc", "desc"] = BOLTZ2.primary_field.direction or "asc"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = settings.resolved_boltz_cache()
        problem = missing_boltz2_message(self.cache)
        if problem:
            raise PredictorUnavailable(problem)
        self.models_loaded = 0
        self.random_weights = False
        self._structure: Any = None
        self._affinity: Any = None
        self._canonicals: dict[str, Any] | None = None
        self.accelerator = self._accelerator()

    # ------------------------------------------------------------------ models

    def _accelerator(self) -> str:
        import torch

        wanted = self.settings.boltz_accelerator
        if wanted == "auto":
            return "gpu" if torch.cuda.is_available() else "cpu"
        if wanted == "gpu" and not torch.cuda.is_available():
            raise PredictorUnavailable("OMTX_BOLTZ_ACCELERATOR=gpu but torch sees no CUDA device on this machine")
        return wanted

    def _ensure_loaded(self) -> None:
        if self._structure is not None:
            return
        import torch
        from boltz.data.mol import load_canonicals
        from boltz.main import Boltz2DiffusionParams, MSAModuleArgs, PairformerArgsV2
        from boltz.model.models.boltz2 import Boltz2
        from rdkit import Chem

        started = time.monotonic()
        torch.set_grad_enabled(False)
        torch.set_float32_matmul_precision("highest")
        Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
        for key in ("CUEQ_DEFAULT_CONFIG", "CUEQ_DISABLE_AOT_TUNING"):
            os.environ.setdefault(key, "1")
        if self.accelerator == "cpu":
            threads = self.settings.boltz_cpu_threads or max(1, (os.cpu_count() or 2) - 1)
            torch.set_num_threads(threads)
        common = {
            "strict": True,
            "map_location": "cpu",
            "weights_only": False,  # boltz checkpoints hold OmegaConf objects; only files from the cache are loaded
            "diffusion_process_args": asdict(Boltz2DiffusionParams()),
            "ema": False,
            "pairformer_args": asdict(PairformerArgsV2()),
            "msa_args": asdict(MSAModuleArgs(subsample_msa=False, num_subsampled_msa=1024, use_paired_feature=True)),
            "steering_args": _steering(False, contact_guidance=True),
        }
        files = {"structure": self.cache / "boltz2_conf.ckpt", "affinity": self.cache / "boltz2_aff.ckpt"}
        marked = [name for name, path in files.items() if _is_random(path)]
        self.random_weights = bool(marked)
        if marked:
            logger.error(
                "LOADING RANDOM-WEIGHT TEST CHECKPOINTS (%s) from %s: every Boltz-2 output of this worker is "
                "meaningless and is labelled model_weights=random-test-fixture. Fetch the real weights with "
                "`omtx-hub models fetch boltz2`.",
                ", ".join(marked),
                self.cache,
            )
        device = torch.device("cuda" if self.accelerator == "gpu" else "cpu")
        self._structure = (
            Boltz2.load_from_checkpoint(
                files["structure"],
                predict_args=_predict_args(Boltz2Params()),
                use_kernels=self.accelerator == "gpu",
                **common,
            )
            .eval()
            .to(device)
        )
        self._affinity = (
            Boltz2.load_from_checkpoint(
                files["affinity"], predict_args=_affinity_args(Boltz2Params()), affinity_mw_correction=False, **common
            )
            .eval()
            .to(device)
        )
        self._canonicals = load_canonicals(str(self.cache / "mols"))
        self.models_loaded += 1
        logger.info(
            "boltz2 models loaded",
            extra={
                "action": "models_loaded",
                "seconds": f"{time.monotonic() - started:.2f}",
                "accelerator": self.accelerator,
                "loads": self.models_loaded,
            },
        )

    # ------------------------------------------------------------------ per target

    def prepare_target(self, target: Target, workdir: Path) -> TargetArtifacts:
        """Resolve each chain's MSA once per target: an uploaded ``.a3m``, or the server's (one request
        per distinct sequence, ``server_<chain>.a3m``), each parsed once to ``<name>.npz``."""
        plan = _plan(target)
        info: dict[str, Any] = {"msa_mode": target.extra.get("msa", "empty")}
        msa: dict[str, str] = {}  # chain id → a3m file name in workdir, or "empty"
        by_sequence: dict[str, str] = {}
        for chain in plan["chains"]:
            wanted = chain["msa"]
            if wanted == "empty":
                msa[chain["id"]] = "empty"
                continue
            if chain["sequence"] in by_sequence:  # copies share one MSA (boltz requires it)
                msa[chain["id"]] = by_sequence[chain["sequence"]]
                continue
            if wanted == "server":
                name = f"server_{chain['id']}.a3m"
                if not (workdir / name).exists():
                    self._msa_from_server(chain["sequence"], workdir / name)
                    info["msa_computed"] = "now"
            else:
                name = wanted
                upload = target.files.get(name)
                if upload is None:
                    raise PermanentPredictionError(f"the target has no uploaded {name}", code="msa_missing")
                if not (workdir / name).exists():
                    shutil.copyfile(upload, workdir / name)
            by_sequence[chain["sequence"]] = msa[chain["id"]] = name
        depth = {}
        for name in sorted(set(by_sequence.values())):
            a3m, npz = workdir / name, workdir / f"{Path(name).stem}.npz"
            if not npz.exists():
                from boltz.data.parse.a3m import parse_a3m

                started = time.monotonic()
                parsed = parse_a3m(a3m, taxonomy=None, max_seqs=8192)
                tmp = workdir / f"{Path(name).stem}.tmp.npz"
                parsed.dump(tmp)
                tmp.replace(npz)
                info["msa_parse_seconds"] = round(info.get("msa_parse_seconds", 0) + time.monotonic() - started, 3)
            depth[name] = _a3m_depth(a3m)
        if depth:
            info["msa_sequences"] = {chain: depth[name] for chain, name in msa.items() if name in depth}
        template = target.files.get(plan["template"]) if plan.get("template") else None
        data = {"plan": plan, "msa": msa, "workdir": str(workdir), "template": str(template) if template else None}
        return TargetArtifacts(directory=workdir, data={**data, "info": info})

    def _msa_from_server(self, sequence: str, dest: Path) -> None:
        """Ask the ColabFold-compatible server (``OMTX_MSA_SERVER_URL``) for the unpaired MSA of one chain."""
        from boltz.data.msa.mmseqs2 import run_mmseqs2

        url = self.settings.msa_server_url
        if not url:
            raise PermanentPredictionError(
                "msa='server' but OMTX_MSA_SERVER_URL is not set on this worker", code="msa_server_not_configured"
            )
        scratch = Path(tempfile.mkdtemp(prefix="msa-"))
        started = time.monotonic()
        try:
            lines = run_mmseqs2(
                [sequence], str(scratch / "msa"), use_env=True, use_pairing=False, host_url=url.rstrip("/")
            )
        except Exception as exc:  # boltz's client raises bare Exceptions for server errors
            raise TransientPredictionError(f"MSA server {url} failed: {exc}", code="msa_server_failed") from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        text = lines[0]
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n")
        tmp.replace(dest)
        logger.info("msa from server", extra={"action": "msa_server", "seconds": f"{time.monotonic() - started:.2f}"})

    # ------------------------------------------------------------------ per micro-batch

    def predict(
        self,
        target: Target,
        artifacts: TargetArtifacts,
        tasks: Sequence[PredictionTask],
        workdir: Path,
        should_stop: Callable[[str], bool],
    ) -> Iterator[Outcome]:
        self._ensure_loaded()
        groups: dict[tuple[Any, ...], list[tuple[PredictionTask, Boltz2Params]]] = {}
        for task in tasks:
            try:
                params = Boltz2Params.model_validate(task.params)
            except ValueError as exc:
                yield Outcome(
                    task.job_id, error=PermanentPredictionError(f"invalid params: {exc}", code="invalid_params")
                )
                continue
            key = tuple(getattr(params, k) for k in _PASS_KEYS)
            groups.setdefault(key, []).append((task, params))
        for number, members in enumerate(groups.values()):
            yield from self._run_group(target, artifacts, members, workdir / f"pass{number}", should_stop)

    def _run_group(
        self,
        target: Target,
        artifacts: TargetArtifacts,
        members: list[tuple[PredictionTask, Boltz2Params]],
        out: Path,
        should_stop: Callable[[str], bool],
    ) -> Iterator[Outcome]:
        params = members[0][1]
        dirs = _Dirs(out)
        ids: dict[str, PredictionTask] = {}
        seeds: dict[str, int] = {}
        own: dict[str, Boltz2Params] = {}  # each record's own params (pocket, template, seed… may differ in a pass)
        for index, (task, task_params) in enumerate(members):
            if should_stop(task.job_id):
                continue
            record_id = f"r{index}"
            problem = self._featurise(record_id, target, artifacts, task, task_params, dirs)
            if problem:
                yield Outcome(
                    task.job_id,
                    error=PermanentPredictionError(
                        f"Boltz-2 could not featurise this input: {problem}", code="featurisation_failed"
                    ),
                )
                continue
            ids[record_id], seeds[record_id], own[record_id] = task, task_params.seed, task_params
        if not ids:
            return
        failed: dict[str, Outcome] = {}
        watch = _Watch(self.settings.boltz_timeout_seconds, lambda rid: should_stop(ids[rid].job_id))
        self._run_pass(self._structure, list(ids), seeds, params, dirs, watch, failed, ids, affinity=False)
        done = [rid for rid in ids if rid not in failed and _structure_files(dirs.predictions / rid)]
        for rid in ids:
            if rid not in failed and rid not in done:
                failed[rid] = _out_of_memory(ids[rid], "structure")
        if params.affinity and done:
            self._run_pass(self._affinity, done, seeds, params, dirs, watch, failed, ids, affinity=True)
            for rid in done:
                if rid not in failed and not (dirs.predictions / rid / f"affinity_{rid}.json").exists():
                    failed[rid] = _out_of_memory(ids[rid], "affinity")
        for rid, task in ids.items():
            if rid in failed:
                if failed[rid].error is not None:
                    yield failed[rid]
                continue  # cancelled: no outcome, the worker records it as stopped
            try:
                yield self._outcome(task, rid, own[rid], dirs, artifacts, watch.seconds.get(rid), seeds[rid])
            except PermanentPredictionError as exc:
                yield Outcome(task.job_id, error=exc)

    def _featurise(
        self,
        record_id: str,
        target: Target,
        artifacts: TargetArtifacts,
        task: PredictionTask,
        params: Boltz2Params,
        dirs: _Dirs,
    ) -> str | None:
        """Write the record's YAML and featurise it with boltz; return boltz's error, if any."""
        from boltz.main import process_input

        plan = artifacts.data["plan"]
        workdir = Path(artifacts.data["workdir"])
        for name in set(artifacts.data["msa"].values()) - {"empty"}:  # beside the YAML, as the recipe has them
            if not (dirs.inputs / name).exists():
                os.link(workdir / name, dirs.inputs / name)
        template = None
        if artifacts.data["template"] and params.template != "off":
            template = "receptor.cif"
            if not (dirs.inputs / template).exists():
                _write_template(Path(artifacts.data["template"]), dirs.inputs / template, self._canonicals or {})
        try:
            document = boltz_document(
                plan, task.ligand.smiles.strip(), params, msa=artifacts.data["msa"], template=template
            )
        except ValueError as exc:
            return str(exc)
        path = dirs.inputs / f"{record_id}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        # each distinct MSA parsed once per target: boltz numbers them in the sorted order of their paths
        # and skips parsing where the processed file exists
        names = sorted(
            {n for n in artifacts.data["msa"].values() if n != "empty"}, key=lambda n: str((dirs.inputs / n).resolve())
        )
        for index, name in enumerate(names):
            os.link(workdir / f"{Path(name).stem}.npz", dirs.msa / f"{record_id}_{index}.npz")
        error: str | None = process_input(
            path,
            ccd=self._canonicals,
            msa_dir=dirs.raw_msa,
            mol_dir=self.cache / "mols",
            boltz2=True,
            use_msa_server=False,
            msa_server_url="",
            msa_pairing_strategy="greedy",
            msa_server_username=None,
            msa_server_password=None,
            api_key_header=None,
            api_key_value=None,
            max_msa_seqs=8192,
            processed_msa_dir=dirs.msa,
            processed_constraints_dir=dirs.constraints,
            processed_templates_dir=dirs.templates,
            processed_mols_dir=dirs.mols,
            structure_dir=dirs.structures,
            records_dir=dirs.records,
            skip_bad_inputs=True,
        )
        return error

    def _run_pass(
        self,
        model: Any,
        record_ids: list[str],
        seeds: dict[str, int],
        params: Boltz2Params,
        dirs: _Dirs,
        watch: _Watch,
        failed: dict[str, Outcome],
        ids: dict[str, PredictionTask],
        *,
        affinity: bool,
    ) -> None:
        """Run ``record_ids`` through ``model`` in one Trainer.predict; resume after a record that aborts."""
        remaining = list(record_ids)
        model.predict_args = _affinity_args(params) if affinity else _predict_args(params)
        model.steering_args = _steering(params.use_potentials, contact_guidance=not affinity)
        model.structure_module.step_scale = params.step_scale
        if affinity:
            model.affinity_mw_correction = params.affinity_mw_correction
        hooks = [m.register_forward_pre_hook(watch.check) for m in _hooked_modules(model)]
        try:
            while remaining:
                try:
                    self._trainer_pass(model, remaining, seeds, params, dirs, watch, affinity=affinity)
                    return
                except _Abort as stop:
                    rid = stop.record_id
                    if stop.reason == "timeout":
                        failed[rid] = Outcome(
                            ids[rid].job_id,
                            error=TransientPredictionError(
                                f"Boltz-2 took longer than OMTX_BOLTZ_TIMEOUT_SECONDS={self.settings.boltz_timeout_seconds:g} "
                                "on this input",
                                code="timeout",
                            ),
                        )
                    else:
                        failed[rid] = Outcome(ids[rid].job_id)  # cancelled
                except Exception as exc:  # a crash inside one record: it fails alone
                    rid = watch.record or remaining[0]
                    logger.exception("boltz2 failed on one record", extra={"action": "predict", "job": ids[rid].job_id})
                    failed[rid] = Outcome(
                        ids[rid].job_id,
                        error=PermanentPredictionError(
                            f"Boltz-2 failed on this input: {type(exc).__name__}: {exc}", code="prediction_failed"
                        ),
                    )
                finally:
                    watch.end()
                remaining = [r for r in remaining[remaining.index(rid) + 1 :] if r not in failed]
        finally:
            for hook in hooks:
                hook.remove()

    def _trainer_pass(
        self,
        model: Any,
        record_ids: list[str],
        seeds: dict[str, int],
        params: Boltz2Params,
        dirs: _Dirs,
        watch: _Watch,
        *,
        affinity: bool,
    ) -> None:
        from boltz.data.module.inferencev2 import Boltz2InferenceDataModule
        from boltz.data.types import Manifest, Record
        from boltz.data.write.writer import BoltzAffinityWriter, BoltzWriter
        from pytorch_lightning import Callback, Trainer, seed_everything

        class _PerRecord(Callback):
            def on_predict_batch_start(
                self, trainer: Any, module: Any, batch: Any, batch_idx: int, dl: int = 0
            ) -> None:
                record_id = batch["record"][0].id
                seed_everything(seeds[record_id], verbose=False)
                watch.begin(record_id)

            def on_predict_batch_end(
                self, trainer: Any, module: Any, out: Any, batch: Any, batch_idx: int, dl: int = 0
            ) -> None:
                watch.end()

        manifest = Manifest([Record.load(dirs.records / f"{rid}.json") for rid in record_ids])
        if affinity:
            writer: Any = BoltzAffinityWriter(data_dir=dirs.structures, output_dir=dirs.predictions)
        else:
            writer = BoltzWriter(
                data_dir=dirs.structures,
                output_dir=dirs.predictions,
                output_format=params.output_format,
                boltz2=True,
                write_embeddings=False,
            )
        data = Boltz2InferenceDataModule(
            manifest=manifest,
            target_dir=dirs.predictions if affinity else dirs.structures,
            msa_dir=dirs.msa,
            mol_dir=self.cache / "mols",
            num_workers=0,
            batch_size=1,
            constraints_dir=dirs.constraints,
            template_dir=dirs.templates,
            extra_mols_dir=dirs.mols,
            override_method="other" if affinity else None,
            affinity=affinity,
            pin_memory=self.accelerator == "gpu",
        )
        trainer = Trainer(
            default_root_dir=dirs.root,
            callbacks=[_PerRecord(), writer],
            accelerator=self.accelerator,
            devices=1,
            precision=32 if self.accelerator == "cpu" else "bf16-mixed",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        trainer.predict(model, datamodule=data, return_predictions=False)

    # ------------------------------------------------------------------ results

    def _outcome(
        self,
        task: PredictionTask,
        rid: str,
        params: Boltz2Params,
        dirs: _Dirs,
        artifacts: TargetArtifacts,
        seconds: float | None,
        seed: int,
    ) -> Outcome:
        import json

        folder = dirs.predictions / rid
        ext = "cif" if params.output_format == "mmcif" else "pdb"
        files: dict[str, bytes] = {}
        results: dict[str, Any] = {}
        for k in range(params.diffusion_samples):
            suffix = "" if k == 0 else f"_model_{k}"
            structure = folder / f"{rid}_model_{k}.{ext}"
            if not structure.exists():
                continue
            files[f"structure{suffix}.{ext}"] = structure.read_bytes()
            confidence = folder / f"confidence_{rid}_model_{k}.json"
            if confidence.exists():
                files[f"confidence{suffix}.json"] = confidence.read_bytes()
                if k == 0:
                    results.update(json.loads(confidence.read_text()))
            for kind in ("plddt", "pae", "pde"):
                array = folder / f"{kind}_{rid}_model_{k}.npz"
                if array.exists():
                    files[f"{kind}{suffix}.npz"] = array.read_bytes()
        if "structure." + ext not in files:
            raise PermanentPredictionError("Boltz-2 wrote no structure for this input", code="prediction_failed")
        affinity = folder / f"affinity_{rid}.json"
        if params.affinity:
            if not affinity.exists():
                raise PermanentPredictionError("Boltz-2 wrote no affinity for this input", code="prediction_failed")
            files["affinity.json"] = affinity.read_bytes()
            results.update(json.loads(affinity.read_text()))
            results.update(_derived(results["affinity_pred_value"]))
        record = json.loads((dirs.records / f"{rid}.json").read_text())
        names = {str(c["chain_id"]): c["chain_name"] for c in record["chains"]}
        _name_chains(results, names)
        document = (dirs.inputs / f"{rid}.yaml").read_text()
        recipe = _recipe(params)
        files["boltz_input.yaml"] = (recipe + document).encode()
        model_input = {"boltz_input": yaml.safe_load(document), "command": recipe.splitlines()[-1].lstrip("# ")}
        plan = artifacts.data["plan"]
        results["ligand_chain"] = chain_letters([c["id"] for c in plan["chains"]], 1)[0]
        results["tokens"] = _tokens(dirs.structures / f"{rid}.npz")
        if plan.get("pocket") and params.pocket == "auto":
            results["pocket_residues"] = plan.get("pocket_residues")
        if plan.get("cofactors"):
            results["cofactors"] = [c.get("ccd") or c.get("smiles") for c in plan["cofactors"]]
        if record.get("templates"):
            results["template_residues"] = sum(t["query_en"] - t["query_st"] for t in record["templates"])
        info = artifacts.data["info"]
        results["msa_mode"] = info["msa_mode"]
        if info["msa_mode"] == "empty":
            results["msa_warning"] = "single-sequence mode (no MSA): lower accuracy than with an MSA"
        if "msa_sequences" in info:
            results["msa_sequences"] = info["msa_sequences"]
        results["model_weights"] = "random-test-fixture" if self.random_weights else "checkpoint"
        results["accelerator"] = self.accelerator
        results["seed"] = seed
        return Outcome(task.job_id, results=results, files=files, accelerator_seconds=seconds, model_input=model_input)


# ---------------------------------------------------------------------------------- helpers


def _plan(target: Target) -> dict[str, Any]:
    """The job's co-folding plan (written at submission); a job queued before multimers carries none:
    its plan is the one chain A, with the single-chain MSA policy of then."""
    if "chains" in target.extra:
        return target.extra
    policy = target.extra.get("msa", "empty")
    msa = {"upload": "msa.a3m", "server": "server"}.get(policy, "empty")
    return {**target.extra, "chains": [{"id": "A", "sequence": target.protein_sequence, "msa": msa}]}


def _write_template(source: Path, dest: Path, canonicals: dict[str, Any]) -> None:
    """The target's receptor as an mmCIF template boltz can read offline: protein residues only, only
    those boltz has a molecule for (the canonical ones; others would make it look the code up), and
    each chain's label_asym_id its own id, which is how boltz names template chains."""
    import gemmi

    structure = gemmi.read_structure(str(source))
    structure.setup_entities()
    structure.remove_ligands_and_waters()
    for chain in structure[0]:
        for index in reversed(range(len(chain))):
            if chain[index].name not in canonicals:
                del chain[index]
    structure.remove_empty_chains()
    for chain in structure[0]:
        for residue in chain:
            residue.subchain = chain.name
    structure.setup_entities()
    tmp = dest.with_suffix(".tmp")
    structure.make_mmcif_document().write_file(str(tmp))
    tmp.replace(dest)


def _name_chains(results: dict[str, Any], names: dict[str, str]) -> None:
    """boltz keys its per-chain values (``chains_ptm``, ``pair_chains_iptm``, boltz-community's
    ``chains_pae``…) by chain index; the hub keys them by chain id (``confidence.json`` keeps boltz's)."""
    for key, value in results.items():
        if not (key.startswith(("chains_", "pair_chains_")) and isinstance(value, dict)):
            continue
        results[key] = {
            names.get(k, k): {names.get(j, j): v for j, v in row.items()} if isinstance(row, dict) else row
            for k, row in value.items()
        }


def _tokens(structure: Path) -> int:
    """Tokens boltz makes of the complex: one per standard residue, one per atom of anything else."""
    import numpy as np

    with np.load(structure) as data:
        residues = data["residues"]
    standard = residues["is_standard"].astype(bool)
    return int(standard.sum() + residues["atom_num"][~standard].sum())


def _recipe(params: Boltz2Params) -> str:
    """The ``boltz predict`` command that reproduces a job from its ``boltz_input.yaml``."""
    options = [
        f"--recycling_steps {params.recycling_steps}",
        f"--sampling_steps {params.sampling_steps}",
        f"--diffusion_samples {params.diffusion_samples}",
        f"--step_scale {params.step_scale}",
        f"--sampling_steps_affinity {params.sampling_steps_affinity}",
        f"--diffusion_samples_affinity {params.diffusion_samples_affinity}",
        f"--output_format {params.output_format}",
        f"--seed {params.seed}",
    ]
    options += ["--affinity_mw_correction"] if params.affinity_mw_correction else []
    options += ["--use_potentials"] if params.use_potentials else []
    options += [f"--method '{params.method}'"] if params.method else []
    return (
        "# What this job gave Boltz-2. Reproduce it with the target's files (msa_*.a3m, receptor.pdb) beside\n"
        "# this file (server MSAs: the worker cache's server_*.a3m, or --use_msa_server):\n"
        f"#   boltz predict boltz_input.yaml {' '.join(options)}\n"
    )


class _Dirs:
    """boltz's processed-input layout under one pass folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs, self.raw_msa, self.predictions = root / "inputs", root / "msa", root / "predictions"
        processed = root / "processed"
        self.records, self.structures, self.msa = processed / "records", processed / "structures", processed / "msa"
        self.constraints, self.templates, self.mols = (
            processed / "constraints",
            processed / "templates",
            processed / "mols",
        )
        for path in (
            self.inputs,
            self.raw_msa,
            self.predictions,
            self.records,
            self.structures,
            self.msa,
            self.constraints,
            self.templates,
            self.mols,
        ):
            path.mkdir(parents=True, exist_ok=True)


def _derived(affinity_pred_value: float) -> dict[str, float]:
    """Values computed by the hub from ``affinity_pred_value`` (log10 of IC50 in µM), labelled as derived.

    pIC50 = −log10(IC50 / M) = 6 − affinity_pred_value. ΔG ≈ RT·ln(IC50 / M) = −RT·ln(10)·pIC50 at
    298.15 K (treats IC50 as a dissociation constant, an approximation).
    """
    pic50 = 6.0 - float(affinity_pred_value)
    return {"pic50_derived": pic50, "delta_g_kcal_mol_derived": -RT_LN10_KCAL_MOL * pic50}


def _predict_args(params: Boltz2Params) -> dict[str, Any]:
    return {
        "recycling_steps": params.recycling_steps,
        "sampling_steps": params.sampling_steps,
        "diffusion_samples": params.diffusion_samples,
        "max_parallel_samples": _MAX_PARALLEL_SAMPLES,
        "write_confidence_summary": True,
        "write_full_pae": True,
        "write_full_pde": True,
    }


def _affinity_args(params: Boltz2Params) -> dict[str, Any]:
    # what boltz predict uses for its affinity pass (5 recycling steps, fixed there)
    return {
        "recycling_steps": 5,
        "sampling_steps": params.sampling_steps_affinity,
        "diffusion_samples": params.diffusion_samples_affinity,
        "max_parallel_samples": min(_MAX_PARALLEL_SAMPLES, params.diffusion_samples_affinity),
        "write_confidence_summary": False,
        "write_full_pae": False,
        "write_full_pde": False,
    }


def _steering(use_potentials: bool, *, contact_guidance: bool) -> dict[str, Any]:
    from boltz.main import BoltzSteeringParams

    steering = BoltzSteeringParams()
    steering.fk_steering = use_potentials
    steering.physical_guidance_update = use_potentials
    steering.contact_guidance_update = contact_guidance
    return asdict(steering)


def _hooked_modules(model: Any) -> list[Any]:
    """Modules called many times per record (trunk blocks, diffusion steps): where a record can be stopped."""
    found = []
    for name in ("pairformer_module", "msa_module", "structure_module", "confidence_module"):
        module = getattr(model, name, None)
        if module is not None:
            found.append(module)
            found.extend(getattr(module, "layers", []))
    score = getattr(getattr(model, "structure_module", None), "score_model", None)
    if score is not None:
        found.append(score)
    return found


def _out_of_memory(task: PredictionTask, stage: str) -> Outcome:
    """boltz catches an out-of-memory inside a record and writes nothing for it: a transient failure."""
    return Outcome(
        task.job_id,
        error=TransientPredictionError(
            f"Boltz-2 ran out of memory on this input in the {stage} pass (boltz skipped it)", code="out_of_memory"
        ),
    )


def _structure_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("confidence_*_model_0.json"))


def _a3m_depth(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for line in handle if line.startswith(">"))


def _is_random(path: Path) -> bool:
    """Whether a checkpoint carries the test fixtures' random-weight marker (read lazily, via mmap)."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as exc:
        raise PredictorUnavailable(f"cannot read Boltz-2 checkpoint {path}: {exc}") from exc
    return bool(isinstance(checkpoint, dict) and checkpoint.get(RANDOM_WEIGHTS_MARKER))
