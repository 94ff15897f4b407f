"""LangChain tool registry: names, schemas, JSON results, argument errors and the dossier cache."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from chainproof.tools import registry
from chainproof.tools.dossier import DossierError
from chainproof.tools.registry import DUE_DILIGENCE_TOOLS, clear_dossier_cache, get_tool

DATA_TOOLS = ["financial_health", "legal_matters", "headline_sentiment", "peer_comparison", "market_risk"]


def test_names_and_schemas():
    assert [t.name for t in DUE_DILIGENCE_TOOLS] == [DATA_TOOLS[0], "legal_passages", *DATA_TOOLS[1:], "risk_scorecard"]
    for name in DATA_TOOLS:
        props = get_tool(name).tool_call_schema.model_json_schema()["properties"]
        assert {"dossier", "as_of"} <= set(props)
        assert len(get_tool(name).description) > 80
    assert {"top_n", "readings"} <= set(get_tool("legal_matters").tool_call_schema.model_json_schema()["properties"])
    assert {"dossier", "as_of", "chunk", "chunks"} == set(get_tool("legal_passages").tool_call_schema.model_json_schema()["properties"])
    assert set(get_tool("risk_scorecard").tool_call_schema.model_json_schema()["properties"]) == {
        "financials", "legal", "sentiment", "peers", "risk"}
    with pytest.raises(KeyError, match=r"unknown tool 'nope'; available: financial_health, legal_passages, legal_matters"):
        get_tool("nope")


def test_full_pipeline_on_bundled_dossier():
    args = {"dossier": "MMM", "as_of": "2018-02-08"}
    out = {name: get_tool(name).invoke(args) for name in DATA_TOOLS}
    for name, result in out.items():
        text = json.dumps(result)  # plain JSON, no custom types
        # small enough to keep in every checkpoint; market_risk carries the price chart's series (~250 points)
        assert len(text) < (10_000 if name == "market_risk" else 4096), (name, len(text))
        assert result["ticker"] == "MMM"
    assert out["market_risk"]["window_end"] == "2018-02-07"
    rebased = out["market_risk"]["rebased"]
    assert rebased[0][1:] == [100.0, 100.0] and rebased[-1][0] == "2018-02-07"
    assert rebased[-1][1] == pytest.approx(100 * (1 + out["market_risk"]["total_price_return"]), abs=0.01)
    assert out["financial_health"]["years"][-1]["revenue"] == 31657
    card = get_tool("risk_scorecard").invoke({"financials": out["financial_health"], "legal": out["legal_matters"],
                                              "sentiment": out["headline_sentiment"],
                                              "peers": out["peer_comparison"], "risk": out["market_risk"]})
    assert card["recommendation"] in ("proceed", "renegotiate", "walk_away") and 0 <= card["total_score"] <= 100
    assert all("." in f["evidence_key"] for f in card["factors"])
    assert get_tool("legal_matters").invoke({**args, "top_n": 3})["matters"].__len__() == 3


def test_folder_path_argument(make_dossier):
    res = get_tool("peer_comparison").invoke({"dossier": str(make_dossier()), "as_of": "2021-06-01"})
    assert res["ticker"] == "TST" and res["multiples"][0]["peer_median"] == 20


@pytest.mark.parametrize("args, field", [
    ({"dossier": "MMM", "as_of": "2018-13-01"}, "as_of"),
    ({"dossier": "MMM"}, "as_of"),
    ({"as_of": "2018-02-08"}, "dossier"),
    ({"dossier": "MMM", "as_of": "2018-02-08", "when": 1}, "when"),
])
def test_bad_args_name_the_field(args, field):
    with pytest.raises(ValidationError) as err:
        get_tool("market_risk").invoke(args)
    assert err.value.errors()[0]["loc"][0] == field


def test_bad_dossier_and_dates():
    with pytest.raises(DossierError, match=r"dossier='ZZZ' is not a folder and no bundled dossier .*available: MMM"):
        get_tool("financial_health").invoke({"dossier": "ZZZ", "as_of": "2018-02-08"})
    with pytest.raises(DossierError, match=r"dossier='/no/such/dir': folder not found"):
        get_tool("financial_health").invoke({"dossier": "/no/such/dir", "as_of": "2018-02-08"})
    with pytest.raises(DossierError, match=r"as_of 2019-06-01 is outside the data.*covers 2013-02-08 to 2018-02-07"):
        get_tool("headline_sentiment").invoke({"dossier": "MMM", "as_of": "2019-06-01"})
    with pytest.raises(ValidationError):
        get_tool("legal_matters").invoke({"dossier": "MMM", "as_of": "2018-02-08", "top_n": 0})


def test_scorecard_rejects_wrong_result():
    args = {"dossier": "MMM", "as_of": "2018-02-08"}
    good = {k: get_tool(n).invoke(args) for k, n in zip(["financials", "legal", "sentiment", "peers", "risk"],
                                                          DATA_TOOLS)}
    with pytest.raises(ValueError, match=r"field 'risk' is not a market_risk result .*risk\.\w+: Field required"):
        get_tool("risk_scorecard").invoke({**good, "risk": good["peers"]})


def test_dossier_cache_parses_once_and_notices_edits(make_dossier, monkeypatch):
    clear_dossier_cache()
    calls = []
    real = registry.load_dossier
    monkeypatch.setattr(registry, "load_dossier", lambda p: calls.append(p) or real(p))
    folder = make_dossier()
    args = {"dossier": str(folder), "as_of": "2021-06-01"}
    for name in DATA_TOOLS:
        get_tool(name).invoke(args)
    assert len(calls) == 1
    hl = folder / "headlines.csv"
    hl.write_text(hl.read_text() + "2021-05-02,Test Co wins a big contract,s\n")
    os.utime(hl, ns=(hl.stat().st_atime_ns, hl.stat().st_mtime_ns + 5_000_000_000))
    res = get_tool("headline_sentiment").invoke(args)
    assert len(calls) == 2 and res["n_scored"] == 4
