"""The web UI in a real browser (Debian's Chromium driven by Playwright), on a real hub with Vina.

Screenshots go to a temporary folder; with OMTX_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from conftest import TINY_BOLTZ, make_settings
from hub_testing import gapped_dimer
from omtx_hub.db.schema import jobs, score_bins
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub, open_hub
from omtx_hub.predictors.boltz2 import Boltz2Predictor
from omtx_hub.queue import BatchSubmission
from omtx_hub.queue.score_bins import count_scores
from omtx_hub.server import BackgroundServer
from omtx_hub.worker import Worker
from omtx_hub.worker_process import WorkerProcess

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")
DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
GOOD = [
    "CC(=O)Oc1ccccc1C(=O)O aspirin",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O ibuprofen",
    "CC(=O)Nc1ccc(O)cc1 paracetamol",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C caffeine",
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("OMTX_UPDATE_SCREENSHOTS") == "1":
        folder = Path(__file__).parents[2] / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory, boltz_cache: Path) -> Iterator[tuple[str, Hub, str, str]]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (make installs Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("ui")
    settings = make_settings(
        tmp,
        f"sqlite:///{tmp / 'hub.db'}",
        default_predictor="vina",
        heartbeat_seconds=2.0,
        boltz_cache=boltz_cache,
        boltz_cpu_threads=1,
    )
    hub = open_hub(settings)
    target = hub.create_target(
        owner="local",
        name="Abl kinase 1IEP",
        receptor=(DATA / "1iep_receptorH.pdb").read_bytes(),
        receptor_filename="1iep.pdb",
        site={"mode": "box", "center": [15.19, 53.903, 16.917], "size": [20, 20, 20]},
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = BackgroundServer(hub, "127.0.0.1", port).start()
    worker = WorkerProcess(settings, ["vina"]).start()
    key, _ = hub.keys.create("local")
    yield server.url, hub, target["target_id"], key
    worker.stop()
    server.stop()
    hub.close()


@pytest.fixture(scope="module")
def page(hub_url: tuple[str, Hub, str, str]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=hub_url[0])
        yield context.new_page()
        browser.close()


def distinct_colours(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(image.getcolors(maxcolors=1 << 20) or [])


def test_submit_watch_rank_and_view_in_3d(page: Any, hub_url: tuple[str, Hub, str, str], shots: Path) -> None:
    url, hub, target_id, key = hub_url
    page.goto("/")
    assert "/login" in page.url  # no page without signing in
    page.locator("#api-key").fill("omtx_not-a-real-key")
    page.locator("form button[type=submit]").click()
    assert "not valid" in page.locator(".errors").inner_text()
    page.locator("#api-key").fill(key)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{url}/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "omtx_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('form input:not([type=hidden]), form select, form textarea')]"
        ".filter(e => e.labels.length === 0).map(e => e.id || e.name)"
    )
    assert unlabelled == []
    page.locator("#batch-name").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ligands"  # the form is walked with the keyboard
    form = page.locator("#batch-form")
    form.locator("#predictor").select_option("vina")
    form.locator("#target").select_option(target_id)
    form.locator("#exhaustiveness").fill("1")
    form.locator("#batch-name").fill("ui screen")
    page.locator("#ligands").fill("\n".join([*GOOD[:2], "C1CC broken", *GOOD[2:]]))
    form.locator("button[type=submit]").click()
    errors = page.locator("#batch-errors")
    errors.get_by_text("broken").wait_for()
    assert "line 3 (broken)" in errors.inner_text()
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{url}/api/v1/jobs", headers=auth).json()["items"] == []  # nothing queued
    page.screenshot(path=str(shots / "submit-error.png"), full_page=True)

    page.locator("#ligands").fill("\n".join(GOOD))
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/jobs/batch_*")
    page.wait_for_selector("#batch[data-state=completed]", timeout=180_000)
    page.wait_for_function("document.querySelectorAll('#results-body tr').length === 4")
    assert page.locator("#counts").inner_text().startswith("4 completed")

    score_header = page.locator("#results-head button", has_text="vina_score_kcal_mol")
    score_header.click()
    ascending = [float(v) for v in page.locator("#results-body tr td:nth-child(3)").all_inner_texts()]
    score_header.click()
    descending = [float(v) for v in page.locator("#results-body tr td:nth-child(3)").all_inner_texts()]
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
    assert page.locator("#histogram svg rect").count() == 12
    assert page.locator("#results-head button", has_text="interactions").count() == 1  # the pose checks ran
    assert page.locator("#contacts-body tr").count() > 0  # and the top hits' contacts are counted
    page.screenshot(path=str(shots / "batch.png"), full_page=True)

    batch_id = page.url.rsplit("/", 1)[-1]
    for link in page.locator(".downloads a").all():
        response = page.request.get(link.get_attribute("href"))
        assert response.status == 200 and len(response.body()) > 100, link.get_attribute("href")

    page.locator("#top a").first.click()
    page.wait_for_selector("#viewer[data-rendered=true]", timeout=60_000)
    page.wait_for_timeout(500)
    assert distinct_colours(page.locator("#viewer").screenshot()) > 50  # a rendered scene, not a blank canvas
    contacts = page.locator("#interactions tbody tr")
    assert contacts.count() > 0  # the best pose's contacts, listed and highlighted in the viewer
    highlighted = json.loads(page.locator("#viewer").get_attribute("data-contacts"))
    assert {f"{r['label']}" for r in highlighted} == {row.split("\t")[0] for row in contacts.all_inner_texts()}
    hbonds = json.loads(page.locator("#viewer").get_attribute("data-hbonds"))
    hb_rows = [row for row in contacts.all_inner_texts() if "\tHB" in row]
    assert len(hbonds) == len(hb_rows)  # each hydrogen bond drawn as a dashed line between its two atoms
    for bond in hbonds:
        gap = sum((a - b) ** 2 for a, b in zip(bond["start"], bond["end"], strict=True)) ** 0.5
        assert 2.4 < gap < 3.6, bond
    assert page.locator("img.depiction").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "Lower (more negative) is better" in page.locator("table.fields").inner_text()
    for link in page.locator("a[download]").all():
        response = page.request.get(link.get_attribute("href"))
        assert response.status == 200 and response.body(), link.get_attribute("href")
    page.screenshot(path=str(shots / "job.png"), full_page=True)

    page.goto("/jobs?job_type=BATCH_PARENT")
    assert page.locator("table.list a", has_text="ui screen").count() == 1
    page.set_viewport_size({"width": 390, "height": 844})  # a phone-sized window: nothing spills sideways
    for path in ("/", f"/jobs/{batch_id}", "/jobs?job_type=BATCH_PARENT"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
    page.screenshot(path=str(shots / "jobs-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    page.screenshot(path=str(shots / "submit.png"), full_page=True)
    assert hub.manager.get(batch_id)["n_completed"] == 4


def test_boltz2_job_with_a_cofactor_and_the_targets_pocket(
    page: Any, hub_url: tuple[str, Hub, str, str], shots: Path
) -> None:
    """A Boltz-2 job on a target with MG and a residue binding site, submitted through the form; the
    target page lists the pocket residues with the positions Boltz-2 was given."""
    url, hub, _, key = hub_url
    target = hub.create_target(
        owner="local",
        name="dimer with Mg",
        receptor=gapped_dimer(),
        site={"mode": "residues", "residues": ["A:115A", "B:103"]},
        cofactors=["MG"],
    )
    page.goto("/")
    if "/login" in page.url:
        page.locator("#api-key").fill(key)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{url}/")
    form = page.locator("#batch-form")
    form.locator("#predictor").select_option("boltz2")
    form.locator("#target").select_option(target["target_id"])
    form.locator("#pocket").select_option("auto")
    form.locator("#method").select_option("x-ray diffraction")
    form.locator("#params").fill(json.dumps(TINY_BOLTZ))
    form.locator("#batch-name").fill("cofold")
    page.locator("#ligands").fill("CCO ethanol")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/jobs/batch_*")
    batch_id = page.url.rsplit("/", 1)[-1]
    settings = hub.settings.model_copy(update={"pose_checks": False})  # not what this test is about
    Worker(settings, hub.manager, hub.store, {"boltz2": Boltz2Predictor(settings)}).run(exit_when_idle=True)
    page.wait_for_selector("#batch[data-state=completed]", timeout=60_000)
    child = next(hub.manager.iter_children(batch_id))
    assert (child["params"]["method"], child["params"]["pocket"]) == ("x-ray diffraction", "auto")
    assert (child["results"]["pocket_residues"], child["results"]["cofactors"]) == (["A:115A", "B:103"], ["MG"])

    page.goto(f"/targets/{target['target_id']}")
    rows = [row.split("\t") for row in page.locator("#pocket tbody tr").all_inner_texts()]
    assert rows == [["A:115A", "A", "12"], ["B:103", "B", "3"]]
    assert page.locator("#cofactors").inner_text().strip() == "MG"
    page.screenshot(path=str(shots / "target.png"), full_page=True)


def _seed_large_batch(hub: Hub, n: int, best_at: int, worst_at: int) -> str:
    """A finished Boltz-2 batch of n ligands written straight into the table (no worker here runs boltz2),
    with the primary score in its indexed column and the result columns kept, as a completion writes them."""
    import sqlalchemy as sa

    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="local",
            predictor="boltz2",
            protein_sequence="MKTAYIAKQRQISFVKSHFSRQ",
            batch_name="large screen",
            ligands=[Ligand("seed", "CCO")],
            max_attempts=1,
        )
    ).record["job_id"]
    parent = hub.manager.get(batch_id)
    now = __import__("time").time()

    def child(i: int) -> dict[str, Any]:
        name, probability = (
            ("needle", 0.999)
            if i == best_at
            else ("worst", 0.0001)
            if i == worst_at
            else (f"l{i}", 0.1 + (i % 800) / 1000)
        )
        return {
            "job_id": f"job_{batch_id.removeprefix('batch_')}_{i:07d}",  # unique across seeded batches
            "job_type": "BATCH_CHILD",
            "owner": "local",
            "predictor": "boltz2",
            "params": {},
            "target_key": parent["target_key"],
            "batch_parent_id": batch_id,
            "batch_index": i,
            "name": name,
            "input": {"ligand_name": name, "ligand_smiles": "CCO"},
            "status": "completed",
            "results": {"affinity_probability_binary": probability, "affinity_pred_value": 1 - probability},
            "score": probability,
            "priority": 0,
            "max_attempts": 1,
            "run_after": now,
            "created_at": now,
            "completed_at": now,
        }

    postgres = hub.manager.core.postgres
    for start in range(1, n, 20_000):  # a transaction per chunk: the worker process writes meanwhile
        with hub.engine.begin() as conn:
            rows = [child(i) for i in range(start, min(n, start + 20_000))]
            conn.execute(jobs.insert(), rows)
            count_scores(conn, postgres, [(batch_id, row["score"]) for row in rows])  # as completions count them
    with hub.engine.begin() as conn:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index == 0)
            .values(
                status="completed",
                completed_at=now,
                results={"affinity_probability_binary": 0.5, "affinity_pred_value": 0.5},
                score=0.5,
            )
        )
        count_scores(conn, postgres, [(batch_id, 0.5)])
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == batch_id)
            .values(
                n_total=n,
                n_pending=0,
                n_completed=n,
                status="completed",
                completed_at=now,
                aggregated_at=now,
                result_columns=["affinity_probability_binary", "affinity_pred_value"],
            )
        )
    return batch_id


def test_a_batch_too_large_to_load_whole_is_ranked_by_the_server(page: Any, hub_url: tuple[str, Hub, str, str]) -> None:
    """Over 20,000 ligands the page shows the best 2,000 of the whole batch, not of its first 20,000."""
    url, hub, _, key = hub_url
    batch_id = _seed_large_batch(hub, 20_050, best_at=20_030, worst_at=20_040)  # both beyond the first 20,000
    page.goto(f"/jobs/{batch_id}")
    if "/login" in page.url:  # when this test runs alone
        page.locator("#api-key").fill(key)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{url}/jobs/{batch_id}")
    first_row = page.locator("#results-body tr").first
    first_row.get_by_text("needle").wait_for(timeout=60_000)
    assert page.locator("#top li").first.inner_text().startswith("needle 0.999")
    assert page.locator("#results-body tr").count() == 2000
    assert first_row.locator("td").first.inner_text() == "1"  # rank over the whole batch
    assert "20,050 ligands" in page.locator("#table-note").inner_text()
    assert page.locator("#histogram svg rect").count() == 20  # the server's histogram of every ligand

    # the next page of the ranking (a cursor from the score index), then back to the best
    assert page.locator("#page-previous").is_disabled()
    page.locator("#page-next").click()
    first_row.locator("td").first.get_by_text("2001", exact=True).wait_for(timeout=60_000)
    assert page.locator("#results-body tr").count() == 2000
    assert page.locator("#results-body tr").last.locator("td").first.inner_text() == "4000"
    assert "ligands 2,001–4,000" in page.locator("#table-note").inner_text()
    expected = hub.manager.ranked_children(batch_id, direction="desc", limit=2001, columns=("name",))[-1]["name"]
    assert expected in first_row.inner_text()  # the 2,001st of the server's ranking
    page.locator("#page-best").click()
    first_row.get_by_text("needle").wait_for(timeout=60_000)

    header = page.locator("#results-head button", has_text="affinity_probability_binary")
    header.click()  # ascending: the server ranks the whole batch again, worst first
    first_row.get_by_text("worst").wait_for(timeout=60_000)
    header.click()
    first_row.get_by_text("needle").wait_for(timeout=60_000)
    page.locator("#status-select").select_option("failed")  # asked of the server: this batch has none
    page.wait_for_function("document.querySelectorAll('#results-body tr').length === 0", timeout=60_000)


def test_a_million_ligand_batch_page_paints_its_best_rows_from_the_index(
    page: Any, hub_url: tuple[str, Hub, str, str]
) -> None:
    """A seeded batch of 1,000,000 children (a fast direct insert, not a screen): the page shows the
    best of the whole batch, ranked by the server from the score index, with the server's histogram.
    The time from navigation to the first ranked row is recorded (bench/results/browser_million.json);
    bench/million.py measures the requests behind it on both databases."""
    url, hub, _, key = hub_url
    t0 = time.perf_counter()
    batch_id = _seed_large_batch(hub, 1_000_000, best_at=987_654, worst_at=999_000)
    seeded = time.perf_counter() - t0
    page.goto("/jobs")
    if "/login" in page.url:  # when this test runs alone
        page.locator("#api-key").fill(key)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{url}/jobs")
    started = time.perf_counter()
    page.goto(f"/jobs/{batch_id}")
    first_row = page.locator("#results-body tr").first
    first_row.get_by_text("needle").wait_for(timeout=60_000)
    painted = time.perf_counter() - started
    assert first_row.locator("td").first.inner_text() == "1"
    assert "1,000,000 ligands" in page.locator("#table-note").inner_text()
    page.locator("#histogram svg rect").first.wait_for(timeout=60_000)
    assert page.locator("#top li").first.inner_text().startswith("needle 0.999")
    figures = {"children": 1_000_000, "seed_s": round(seeded, 1), "first_ranked_row_s": round(painted, 3)}
    results = Path(__file__).parents[2] / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "browser_million.json").write_text(json.dumps(figures, indent=2))
    print(f"\nbrowser_million: {json.dumps(figures)}")
    with hub.engine.begin() as conn:  # the module's other tests share this database
        conn.execute(jobs.delete().where(jobs.c.batch_parent_id == batch_id))
        conn.execute(jobs.delete().where(jobs.c.job_id == batch_id))
        conn.execute(score_bins.delete().where(score_bins.c.batch_parent_id == batch_id))


def test_the_batch_page_says_why_a_batch_waits(page: Any, hub_url: tuple[str, Hub, str, str]) -> None:
    """A pending batch of a predictor no worker runs here (boltz2): the status's warning is on the page."""
    url, hub, _, key = hub_url
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="local",
            predictor="boltz2",
            protein_sequence="MKTAYIAKQRQISFVKSHFSRQ",
            batch_name="waiting",
            ligands=[Ligand("ethanol", "CCO")],
            max_attempts=1,
        )
    ).record["job_id"]
    page.goto(f"/jobs/{batch_id}")
    if "/login" in page.url:  # when this test runs alone
        page.locator("#api-key").fill(key)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{url}/jobs/{batch_id}")
    warning = page.locator("#warnings")
    warning.get_by_text("no worker that runs predictor 'boltz2'").wait_for(timeout=30_000)
    assert "omtx-hub worker --predictor boltz2" in warning.inner_text()
    hub.manager.cancel(batch_id, "local")


def test_the_batch_page_ranks_on_required_contacts_and_counts_the_top_hits_contacts(
    page: Any, hub_url: tuple[str, Hub, str, str]
) -> None:
    """Poses written as a worker records them (test predictor: no worker here runs it): the page ranks
    only what makes the contacts typed into the filter, and its contacts table follows."""
    url, hub, _, key = hub_url
    poses = {
        "hinge_binder": (-9.0, "A:MET318:HBAcceptor, A:THR315:HBDonor", True),
        "best_score_no_hinge": (-11.0, "A:ASP381:HBAcceptor", True),
        "hinge_but_clashing": (-10.0, "A:MET318:HBAcceptor", False),
    }
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="local",
            predictor="test",
            protein_sequence="MKTAYIAKQR",
            batch_name="contacts",
            ligands=[Ligand(name, "CCO") for name in poses],
            max_attempts=1,
            ranking={"required_interactions": ["A:MET318:HBAcceptor"], "pose_checks": "any"},
        )
    ).record["job_id"]
    claimed = hub.manager.claim("w-ui", ["test"], limit=3)
    hub.manager.complete_many(
        [
            (job, {"score": score, "interactions": contacts, "pose_checks_passed": passed}, 1.0, 1.0)
            for job in claimed
            for score, contacts, passed in [poses[job.input["ligand_name"]]]
        ],
        "w-ui",
    )
    page.goto(f"/jobs/{batch_id}")
    if "/login" in page.url:  # when this test runs alone
        page.locator("#api-key").fill(key)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{url}/jobs/{batch_id}")
    page.wait_for_function("document.querySelectorAll('#results-body tr').length === 3")

    def ranked() -> list[str]:
        names = page.locator("#results-body tr td:nth-child(2)").all_inner_texts()
        ranks = page.locator("#results-body tr td:nth-child(1)").all_inner_texts()
        return [n for n, r in zip(names, ranks, strict=True) if r]

    assert page.locator("#require-filter").input_value() == "A:MET318:HBAcceptor"  # the batch's own rule
    assert ranked() == ["hinge_but_clashing", "hinge_binder"]
    assert page.locator("#contacts-body tr").first.inner_text().startswith("A:MET318:HBAcceptor")
    page.locator("#pose-checks-filter").check()
    page.wait_for_function("document.querySelectorAll('#results-body tr td:first-child:not(:empty)').length === 1")
    assert ranked() == ["hinge_binder"]
    page.locator("#pose-checks-filter").uncheck()
    page.locator("#require-filter").fill("")
    page.locator("#require-filter").dispatch_event("change")
    page.wait_for_function("document.querySelectorAll('#results-body tr td:first-child:not(:empty)').length === 3")
    assert ranked() == ["best_score_no_hinge", "hinge_but_clashing", "hinge_binder"]
