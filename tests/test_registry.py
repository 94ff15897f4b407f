"""Graph discovery: register(), the `graphs` setting (module:attr) and the `chainproof.graphs`
entry-point group; a graph that fails to load is reported, never breaks the others."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from chainproof import Chainproof, ChainSpec, Settings, get_spec, list_graphs, register
from chainproof.errors import GraphNotFound, InputError, UserError
from chainproof.graphs import registry
from chainproof.graphs.due_diligence import DueDiligence
from testkit.toy_graph import ToyGraph


@pytest.fixture
def graph_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path holding a good and a broken graph module; registry state restored after."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "good_graph.py").write_text(textwrap.dedent("""
        from testkit.toy_graph import ToyGraph

        class Custom(ToyGraph):
            '''A toy graph declared by path.'''
            name = "custom-toy"

        def configured():
            spec = Custom()
            spec.threshold = 42
            return spec
    """))
    (folder / "broken_graph.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(registry, "_PATHS", [])
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    yield folder
    for name in ("good_graph", "broken_graph"):
        sys.modules.pop(name, None)


def test_the_bundled_graph_is_found_through_the_entry_point_group():
    info = {g.name: g for g in list_graphs()}["due-diligence"]
    assert info.error is None and isinstance(info.spec, DueDiligence)
    assert info.source.startswith("entry point chainproof.graphs.due_diligence:DueDiligence")
    assert set(info.inputs_model.model_fields) == {"company", "as_of", "dossier", "debate"}
    assert info.description.startswith("Due diligence on a company as of a date")


def test_graphs_setting_paths_load_classes_and_factories(graph_modules, home):
    settings = Settings(home=home, graphs=["good_graph:Custom", "good_graph:configured"])
    with Chainproof(settings):
        spec = get_spec("custom-toy")
    assert type(spec).__name__ == "Custom"
    # the factory path is listed under the same name; the first source wins
    assert [g.source for g in list_graphs() if g.name == "custom-toy"] == ["setting graphs: good_graph:Custom"]


def test_a_broken_graph_is_listed_with_its_error_and_others_still_load(graph_modules):
    registry.add_paths(["broken_graph:Spec", "good_graph:Custom"])
    graphs = {g.name: g for g in list_graphs()}
    broken = graphs["setting graphs: broken_graph:Spec"]
    assert broken.spec is None and "ModuleNotFoundError" in broken.error and "no_such_module_anywhere" in broken.error
    assert graphs["custom-toy"].error is None and graphs["due-diligence"].error is None
    with pytest.raises(GraphNotFound, match="unknown graph 'margin-nope'.*custom-toy"):
        get_spec("margin-nope")


def test_register_accepts_a_configured_factory_and_refuses_other_things(graph_modules):
    class Tuned(ToyGraph):
        def __init__(self, factor: int) -> None:
            self.factor = factor

    register("tuned", lambda: Tuned(factor=3))
    assert get_spec("tuned").factor == 3  # a configured factory is called, not the bare class
    assert get_spec("tuned") is not get_spec("tuned")  # a fresh spec per run
    with pytest.raises(TypeError, match="expected a ChainSpec"):
        register("bad", 42)
    register("bad-factory", lambda: "not a spec")
    with pytest.raises(TypeError, match="returned str, expected a ChainSpec"):
        get_spec("bad-factory")


def test_a_bad_graphs_setting_names_the_entry():
    with pytest.raises(ValueError, match=r"graphs\[1\]: expected 'package.module:attribute'"):
        Settings(graphs=["ok.mod:Attr", "no-colon"])


def test_inputs_model_validates_and_names_each_field():
    from pydantic import BaseModel, Field

    class TriageInputs(BaseModel):
        case: int = Field(gt=0)
        urgency: str = "normal"

    class Triage(ChainSpec):
        name = "triage"
        inputs_model = TriageInputs

    with pytest.raises(InputError, match=r"inputs of graph 'triage': case: Input should be greater than 0") as err:
        Triage().validate_inputs({"case": -1})
    assert isinstance(err.value, UserError) and err.value.exit_code == 2
    assert Triage().validate_inputs({"case": "7"}) == {"case": 7, "urgency": "normal"}


def test_a_graph_name_declared_by_two_packages_is_refused_not_taken_over(graph_modules, monkeypatch):
    from importlib.metadata import EntryPoint

    real = registry._entry_points()
    impostor = EntryPoint("due-diligence", "good_graph:Custom", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: sorted([*real, impostor], key=lambda ep: ep.name))
    with pytest.raises(GraphNotFound, match=r"'due-diligence' is declared by several installed packages.*good_graph:Custom"):
        get_spec("due-diligence")
    listed = {g.name: g for g in list_graphs()}["due-diligence"]
    assert listed.spec is None and "declared by several" in listed.error


def test_the_cli_finds_graphs_named_in_the_graphs_setting(graph_modules, home, monkeypatch):
    from typer.testing import CliRunner

    import chainproof.cli as cli

    monkeypatch.setenv("CHAINPROOF_GRAPHS", '["good_graph:Custom"]')
    monkeypatch.setattr(cli.console, "_width", 250)  # wide, then back to the terminal's width (None) after
    listed = CliRunner().invoke(cli.app, ["graphs"])
    assert listed.exit_code == 0 and "custom-toy" in listed.output and "setting graphs: good_graph:Custom" in listed.output


def test_typed_inputs_reach_the_hooks_as_their_types(settings):
    from datetime import date

    from pydantic import BaseModel

    from chainproof import StaticModels
    from testkit.toy_models import toy_model

    seen = {}

    class DatedInputs(BaseModel):
        x: int
        review_date: date

    class DatedToy(ToyGraph):
        inputs_model = DatedInputs

        def validate_inputs(self, inputs):
            return ChainSpec.validate_inputs(self, inputs)

        def goal(self, inputs):
            seen["review_date"] = inputs["review_date"]
            return super().goal(inputs)

    register("toy-dated", DatedToy)
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        app.start("toy-dated", {"x": 3, "review_date": "2024-03-01"})
    assert seen["review_date"] == date(2024, 3, 1)
