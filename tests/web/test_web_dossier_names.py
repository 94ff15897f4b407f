"""A dossier argument is read the same way by the CLI and the web app
(``chainproof.tools.dossier.locate_dossier``): the ticker of a bundled dossier, a folder under
``$CHAINPROOF_HOME/dossiers`` by its name, or a path; a dossier that fails to load is refused
through the web without the server's paths."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from chainproof.cli import app as cli
from chainproof.tools.dossier import bundled_root

AS_OF = "2018-02-08"


def _recorded(web, run_id):
    return web.engine.audit.get_run(run_id).inputs


def test_the_web_app_takes_a_bundled_ticker_or_a_name_under_home_dossiers(web, home):
    submitted: list[str] = []
    web.app.state.runner.submit = lambda run_id, what, call: submitted.append(run_id)
    shutil.copytree(bundled_root() / "MMM", home / "dossiers" / "MMM-2018")
    ana = web.client("ana")
    cases = [("due-diligence", {"company": "MMM", "as_of": AS_OF, "dossier": "MMM"}, bundled_root() / "MMM"),
             ("due-diligence", {"company": "MMM", "as_of": AS_OF, "dossier": "mmm"}, bundled_root() / "MMM"),
             ("due-diligence", {"company": "MMM", "as_of": AS_OF, "dossier": "MMM-2018"}, home / "dossiers" / "MMM-2018"),
             ("position-risk", {"ticker": "MMM", "as_of": AS_OF, "dossier": "MMM"}, bundled_root() / "MMM")]
    for graph, inputs, folder in cases:
        r = ana.post("/api/runs", json={"graph": graph, "inputs": inputs})
        assert r.status_code == 202, (inputs, r.text)
        assert _recorded(web, r.json()["run_id"])["dossier"] == str(folder.resolve())
    r = ana.post("/api/runs", json={"graph": "filing-qa", "inputs": {"company": "MMM", "question": "What risks?",
                                                                      "dossier": "MMM"}})
    assert r.status_code == 202, r.text
    assert len(submitted) == len(cases) + 1


def test_a_dossier_the_web_cannot_find_or_load_is_refused_without_server_paths(web, home):
    broken = home / "dossiers" / "BROKEN"
    shutil.copytree(bundled_root() / "MMM", broken)
    (broken / "prices.csv").unlink()
    ana = web.client("ana")
    refusals = [({"dossier": "NOPE"}, "dossier: 'NOPE' is not a dossier folder under $CHAINPROOF_HOME/dossiers, "
                                      "nor the ticker of a bundled dossier (bundled: MMM)"),
                ({"dossier": "BROKEN"}, "prices.csv")]
    for extra, expected in refusals:
        r = ana.post("/api/runs", json={"graph": "due-diligence", "inputs": {"company": "MMM", "as_of": AS_OF, **extra}})
        assert r.status_code == 422 and expected in r.json()["detail"], r.text
        for server_path in (str(home), str(home.resolve()), str(bundled_root()), str(bundled_root().resolve())):
            assert server_path not in r.text, r.text
    assert ana.get("/api/runs").json() == []


def test_the_cli_reads_a_dossier_argument_the_same_way(home, tmp_path):
    shutil.copytree(bundled_root() / "MMM", home / "dossiers" / "MMM-2018")
    runner = CliRunner()
    for name in ("MMM", "MMM-2018"):  # found (and loaded): refused only for the date, which comes later
        r = runner.invoke(cli, ["run", "due-diligence", "--company", "MMM", "--as-of", "2016-03-01", "--dossier", name])
        assert r.exit_code == 2 and "before the date this dossier was assembled for" in r.output, r.output
    r = runner.invoke(cli, ["run", "due-diligence", "--company", "MMM", "--as-of", AS_OF, "--dossier", "NOPE"])
    assert r.exit_code == 2 and "dossier: 'NOPE' is not a folder in the working directory, a dossier folder" in r.output
