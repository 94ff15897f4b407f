"""Runs started from the web app read files only inside the allowed folders: an analyst who names
a server file or folder as a run input (a dossier, a document, a portfolio, or a dossier inside a
portfolio file) through ``..``, an absolute path or a symbolic link is refused with 422 naming the
field, before the graph opens anything; bundled names and the allowed folders still work, and the
CLI still reads its local user's own paths."""

from __future__ import annotations

import json
import shutil

import pytest

from chainproof.graphs.registry import get_spec
from chainproof.tools.dossier import bundled_root

AS_OF = "2018-02-08"
SECRET = "the server's secret line"


@pytest.fixture
def places(web, home, tmp_path):
    """``outside``: a valid dossier (and files) no web run may read; ``allowed``: the same dossier
    in ``$CHAINPROOF_HOME/dossiers``. Runs are recorded as submitted, not run: what is checked
    here is refused or accepted before a run starts."""
    outside = tmp_path / "outside"
    shutil.copytree(bundled_root() / "MMM", outside / "MMM")
    (outside / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    (outside / "doc.json").write_text(json.dumps({"name": "secret", "sections": {"a": [SECRET]}}), encoding="utf-8")
    (outside / "book.csv").write_text(f"ticker,weight\n{SECRET},0.5\n", encoding="utf-8")
    allowed = home / "dossiers"
    shutil.copytree(bundled_root() / "MMM", allowed / "MMM")
    submitted: list[str] = []
    web.app.state.runner.submit = lambda run_id, what, call: submitted.append(run_id)
    return outside, allowed, submitted


def _refused(client, graph, inputs, field, why):
    r = client.post("/api/runs", json={"graph": graph, "inputs": inputs})
    assert r.status_code == 422, r.text
    given = json.dumps(inputs)
    for root in client.app.state.settings.web.input_roots(client.app.state.settings.home):
        for shown in {str(root), str(root.resolve())}:  # the server's folders, unless the client typed them
            assert shown not in r.text or shown in given, (shown, r.text)
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}: ") and why in detail, detail
    assert SECRET not in r.text  # nothing of the file came back


def test_paths_outside_the_allowed_folders_are_refused_naming_the_field(web, places, tmp_path):
    outside, allowed, submitted = places
    ana = web.client("ana")
    dd = {"company": "MMM", "as_of": AS_OF}
    _refused(ana, "due-diligence", {**dd, "dossier": str(outside / "MMM")}, "dossier", "must be inside one of the server's input folders")
    _refused(ana, "due-diligence", {**dd, "dossier": "home/dossiers/../../outside/MMM"}, "dossier", "'..'")
    _refused(ana, "due-diligence", {**dd, "dossier": f"{allowed}/../../outside/MMM"}, "dossier", "'..'")
    (allowed / "LINK").symlink_to(outside / "MMM")  # a link inside the allowed folder, to outside
    _refused(ana, "due-diligence", {**dd, "dossier": str(allowed / "LINK")}, "dossier", "must be inside one of the server's input folders")
    shutil.copytree(allowed / "MMM", allowed / "MMM2")  # an allowed dossier holding a link to a server file
    (allowed / "MMM2" / "filings" / "risk_factors.txt").unlink()
    (allowed / "MMM2" / "filings" / "risk_factors.txt").symlink_to(outside / "secret.txt")
    _refused(ana, "due-diligence", {**dd, "dossier": str(allowed / "MMM2")}, "dossier", "symbolic link")
    qa = {"company": "MMM", "question": "What are the risks?"}
    _refused(ana, "filing-qa", {**qa, "document": str(outside / "doc.json")}, "document", "must be inside one of the server's input folders")
    _refused(ana, "filing-qa", {**qa, "dossier": str(outside / "MMM")}, "dossier", "must be inside one of the server's input folders")
    _refused(ana, "position-risk", {"ticker": "MMM", "as_of": AS_OF, "dossier": str(outside / "MMM")},
             "dossier", "must be inside one of the server's input folders")
    _refused(ana, "portfolio-scan", {"portfolio": str(outside / "book.csv"), "as_of": AS_OF},
             "portfolio", "must be inside one of the server's input folders")
    # a portfolio file in an allowed folder may not lead to a dossier outside it
    for n, dossier in enumerate(("../../outside/MMM", str(outside / "MMM"))):
        book = allowed / f"book{n}.csv"
        book.write_text(f"ticker,weight,dossier\nMMM,0.5,{dossier}\n", encoding="utf-8")
        why = "'..'" if ".." in dossier else "must be inside one of the server's input folders"
        _refused(ana, "portfolio-scan", {"portfolio": str(book), "as_of": AS_OF}, "portfolio line 2: dossier", why)
    assert submitted == [] and ana.get("/api/runs").json() == []  # nothing started, nothing recorded


def test_bundled_names_and_allowed_folders_still_start_and_the_cli_reads_its_own_paths(web, places, tmp_path):
    outside, allowed, submitted = places
    ana = web.client("ana")
    starts = [("due-diligence", {"company": "MMM", "as_of": AS_OF}),  # the bundled dossier
              ("due-diligence", {"company": "MMM", "as_of": AS_OF, "dossier": str(allowed / "MMM")}),
              ("position-risk", {"ticker": "MMM", "as_of": AS_OF, "dossier": str(allowed / "MMM")}),
              ("filing-qa", {"company": "MMM", "question": "What are the risks?", "dossier": str(bundled_root() / "MMM")})]
    (allowed / "book.csv").write_text("ticker,weight,dossier\nMMM,0.5,MMM\n", encoding="utf-8")
    starts.append(("portfolio-scan", {"portfolio": str(allowed / "book.csv"), "as_of": AS_OF, "fan_out": False}))
    for graph, inputs in starts:
        r = ana.post("/api/runs", json={"graph": graph, "inputs": inputs})
        assert r.status_code == 202, (graph, r.text)
    shared = tmp_path / "shared"
    shutil.copytree(bundled_root() / "MMM", shared / "MMM")
    inputs = {"company": "MMM", "as_of": AS_OF, "dossier": str(shared / "MMM")}
    _refused(ana, "due-diligence", inputs, "dossier", "web.input_dirs")
    web.app.state.settings.web.input_dirs.append(shared)  # the setting allows a folder
    assert ana.post("/api/runs", json={"graph": "due-diligence", "inputs": inputs}).status_code == 202
    assert len(submitted) == len(starts) + 1
    # the CLI (a local user on their own machine) is not limited: the graph reads the path it is given
    checked = get_spec("due-diligence").validate_inputs({"company": "MMM", "as_of": AS_OF, "dossier": str(outside / "MMM")})
    assert checked["dossier"] == str((outside / "MMM").resolve())
