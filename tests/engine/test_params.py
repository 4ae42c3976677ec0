"""The validated parameter object and state validation: every bad class is refused by name."""
import math

import numpy as np
import pytest

from core.errors import LatticeError, ValidationError
from core.engine import Lattice
from core.engine import PARAM_SPECS, LatticeParams


def test_defaults_reproduce_the_seed_and_every_spec_is_complete():
    p = LatticeParams()
    assert (p.lambda_, p.f, p.u_rate, p.K, p.eta, p.rho, p.alpha, p.beta) == (1.0, 1.0, 0.1, 0.0, 1.0, 0.5, 1.0, 0.0)
    for spec in PARAM_SPECS.values():
        assert spec.label and spec.help
        if spec.kind != "choice":
            assert spec.minimum <= spec.default <= spec.maximum and spec.unit is not None


@pytest.mark.parametrize("name,value,fragment", [
    ("lambda_", -0.1, "lambda_"), ("f", math.nan, "finite"), ("K", math.inf, "finite"),
    ("eta", 1.5, "[0.0, 1.0]"), ("dt", -1, "dt"), ("k", 2.5, "whole number"), ("k", 0, "k"),
    ("time_unit", "fortnight", "one of"), ("alpha", "abc", "not a number"), ("rho", True, "not a number"),
])
def test_bad_parameter_values_name_the_field_and_range(name, value, fragment):
    with pytest.raises(ValidationError) as info:
        LatticeParams.from_dict({name: value})
    assert info.value.field == name
    assert fragment in str(info.value)
    assert isinstance(info.value, LatticeError)


def test_unknown_parameter_is_refused():
    with pytest.raises(ValidationError, match="unknown parameter") as info:
        LatticeParams.from_dict({"lamda": 1.0})
    assert info.value.field == "lamda"


def test_strings_from_forms_and_cli_are_coerced():
    p = LatticeParams.from_dict({"K": "0.5", "k": "7", "time_unit": "day"})
    assert p.K == 0.5 and p.k == 7 and p.time_unit_seconds == 86400
    assert p.replace(K=1.0).K == 1.0 and p.K == 0.5  # immutable
    assert LatticeParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("kwargs,field", [
    (dict(energy=[1.0, 0.0]), "energy"), (dict(energy=[-2.0]), "energy"),
    (dict(coherence=[1.2]), "coherence"), (dict(coherence=[-0.01]), "coherence"),
    (dict(uncertainty=[2.0]), "uncertainty"), (dict(phase=[np.nan]), "phase"),
    (dict(energy=[np.inf]), "energy"), (dict(energy=[1.0], coherence=[0.5, 0.5]), "state"),
    (dict(energy=[[1.0]]), "energy"), (dict(coherence=["a"]), "coherence"),
])
def test_bad_state_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        Lattice(**kwargs)
    assert info.value.field == field


def test_set_state_validates_and_changes_nothing_on_error():
    lat = Lattice(energy=[1.0, 2.0])
    lat.set_state(1, coherence=0.5, energy=3.0)
    assert lat.coherence[1] == 0.5 and lat.energy[1] == 3.0
    with pytest.raises(ValidationError, match="coherence"):
        lat.set_state(1, coherence=1.5, energy=5.0)
    assert lat.energy[1] == 3.0
    with pytest.raises(ValidationError, match="index"):
        lat.set_state(7, energy=1.0)
    with pytest.raises(ValueError):
        lat.coherence[0] = 0.3  # the arrays are read-only views


def test_bad_edges_and_observations():
    lat = Lattice(n=3)
    for args in [(0, 0, 0.5), (0, 1, 0.0), (0, 1, 1.5), (0, 5, 0.5), (0, 1, float("nan"))]:
        with pytest.raises(ValidationError):
            lat.add_edge(*args)
    with pytest.raises(ValidationError):
        lat.observe([0], strength=2.0)
    with pytest.raises(ValidationError):
        lat.observe([9])
    assert lat.n_edges == 0 and lat.coherence.tolist() == [1.0, 1.0, 1.0]
