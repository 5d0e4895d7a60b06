from __future__ import annotations

import pytest

from ftops.cost import inference_cost_usd, training_epochs
from ftops.errors import did_you_mean


def test_training_epochs_are_the_specs_else_the_services_choice() -> None:
    assert training_epochs(7, 10) == 7
    assert training_epochs(None, 10) == 10  # auto: 100 passes over 10 examples
    assert training_epochs(None, 1000) == 3


def test_inference_prices_input_and_output_apart() -> None:
    assert inference_cost_usd(1_000_000, 0, (0.3, 1.2)) == pytest.approx(0.3)
    assert inference_cost_usd(2_000, 500, (0.3, 1.2)) == pytest.approx(0.0012)
    assert inference_cost_usd(0, 0, (0.3, 1.2)) == 0


def test_did_you_mean_names_the_closest_choice() -> None:
    assert did_you_mean("modles", ["models", "datasets"]) == " (did you mean 'models'?)"
    assert did_you_mean("zzz", ["models", "datasets"]) == ""
    assert did_you_mean("x", []) == ""
    # The same answer whatever the order of the choices (a set's order varies between runs).
    assert did_you_mean("ab", ["ac", "ad"]) == did_you_mean("ab", ["ad", "ac"])
