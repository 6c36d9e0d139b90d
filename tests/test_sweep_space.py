"""Hydra's sweep syntax -> Optuna distributions: one table of cases, one of refusals."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lightning_args.errors import SearchSpaceError
from lightning_args.sweep.space import Param, parse, suggest

CASES = [
    # (expression, expected distribution)
    ("choice(1,2,3)", CategoricalDistribution([1, 2, 3])),
    ("1,2,3", CategoricalDistribution([1, 2, 3])),
    ("choice(mlp,cnn)", CategoricalDistribution(["mlp", "cnn"])),
    ("choice([128],[256,128])", CategoricalDistribution(["[128]", "[256,128]"])),
    ("choice(true,false)", CategoricalDistribution([True, False])),
    # Hydra's range excludes its upper bound; Optuna's high is inclusive.
    ("range(1,5)", IntDistribution(1, 4)),
    ("range(0,10,3)", IntDistribution(0, 9, step=3)),
    ("range(5,1,-1)", IntDistribution(2, 5)),
    ("range(0.1,0.5,0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
    ("shuffle(range(1,4))", CategoricalDistribution([1, 2, 3])),
    ("interval(0.1,1)", FloatDistribution(0.1, 1.0)),
    ("interval(1,10)", FloatDistribution(1.0, 10.0)),  # Hydra's interval is a float one
    ("int(interval(8,64))", IntDistribution(8, 64)),
    ("tag(log,interval(1e-4,1e-1))", FloatDistribution(1e-4, 1e-1, log=True)),
    ("tag(log,int(interval(8,256)))", IntDistribution(8, 256, log=True)),
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expression_maps_to_distribution(expression: str, expected: object) -> None:
    space = parse({"model.width": expression})
    (param,) = space.params
    assert param.name == "model.width"
    if isinstance(expected, CategoricalDistribution) and expression.startswith("shuffle"):
        assert sorted(param.distribution.choices) == sorted(expected.choices)  # type: ignore[attr-defined]
    elif isinstance(expected, FloatDistribution) and expected.step is not None:
        dist = param.distribution
        assert isinstance(dist, FloatDistribution)
        assert (dist.low, dist.step, dist.log) == (expected.low, expected.step, expected.log)
        assert dist.high == pytest.approx(expected.high)
    else:
        assert param.distribution == expected
    assert space.fixed == ()


def test_plain_values_are_fixed_overrides() -> None:
    space = parse(["model/encoder=choice(mlp,cnn)", "+extra=3", "trainer.max_epochs=5"])
    (param,) = space.params
    assert param.name == "model/encoder"
    assert space.fixed == ("+extra=3", "trainer.max_epochs=5")
    assert space.names() == {"model/encoder", "extra", "trainer.max_epochs"}


def test_the_sampled_value_becomes_the_override_the_job_gets() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = parse(
        {"+x": "choice([128],[256,128])", "y": "range(1,5)", "z": "tag(log,interval(1e-4,1))"}
    ).params
    trial = study.ask()
    overrides = [p.override(suggest(trial, p)) for p in params]
    assert overrides[0] in ("+x=[128]", "+x=[256,128]")
    assert params[0].name == "x"
    assert params[0].key == "+x"
    y = int(overrides[1].split("=")[1])
    assert 1 <= y <= 4
    assert 1e-4 <= float(overrides[2].split("=")[1]) <= 1


REFUSALS = [
    ("interval(5,1)", "lower bound must be below the upper one. Fix: x=interval(1.0, 5.0)"),
    ("interval(1,1)", "lower bound must be below"),
    ("range(5,1)", "is empty (the upper bound is excluded)"),
    ("tag(log,interval(0,1))", "a log scale needs a lower bound above 0"),
    ("tag(bogus,interval(0,1))", "unknown tag(s) ['bogus']"),
    ("choice(1,1)", "repeats a choice"),
    ("choice(1,", "cannot parse 'x=choice(1,'"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_expressions_are_refused_with_the_key_and_a_fix(expression: str, message: str) -> None:
    with pytest.raises(SearchSpaceError) as raised:
        parse({"x": expression}, where="hydra.sweeper.params")
    assert message in str(raised.value)
    assert str(raised.value).startswith("hydra.sweeper.params: ")
    assert isinstance(raised.value, ValueError)


# Hydra's parse errors: the reason, a line pointing at the grammar's docs; some have neither.
GRAMMAR = "See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"
PARSE_ERRORS = [
    (f"Error parsing override 'x=y'\nmissing ')' at '<EOF>'\n{GRAMMAR}", "missing ')' at '<EOF>'"),
    (f"no viable alternative at input 'choice(1,'\n{GRAMMAR}", "no viable alternative at input"),
    ("one line, no pointer", "one line, no pointer"),
    (GRAMMAR, GRAMMAR),
    ("", "Hydra gave no reason"),
]


@pytest.mark.parametrize(
    ("text", "reason"), PARSE_ERRORS, ids=["3 lines", "2 lines", "1 line", "pointer only", "empty"]
)
def test_any_parse_error_of_hydras_is_reported_not_replaced_by_an_index_error(
    monkeypatch: pytest.MonkeyPatch, text: str, reason: str
) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    def parse_overrides(self: OverridesParser, overrides: list[str]) -> list[object]:
        raise OverrideParseException(override=overrides[0], message=text)

    monkeypatch.setattr(OverridesParser, "parse_overrides", parse_overrides)
    with pytest.raises(SearchSpaceError, match=r"^params: cannot parse 'x=y': ") as raised:
        parse(["x=y"])
    assert reason in str(raised.value).splitlines()[0]
    assert "Expected Hydra's sweep syntax" in str(raised.value)


def test_param_override_keeps_the_prefix() -> None:
    param = Param("++a.b", IntDistribution(1, 2))
    assert (param.name, param.override(2)) == ("a.b", "++a.b=2")
