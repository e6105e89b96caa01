"""Ensemble combination at the deadline: votes, means, stragglers, confidence."""

from __future__ import annotations

import numpy as np
import pytest

from clipper.common.errors import ModelError
from clipper.frontend.selection import POLICIES, Selection, combine_outputs

ABC = Selection(("a", "b", "c"), {"a": 0.5, "b": 0.3, "c": 0.2})


def test_weighted_vote_on_labels() -> None:
    out = combine_outputs(ABC, {"a": np.array(1), "b": np.array(2), "c": np.array(3)})
    assert out.output == 1
    assert out.answered == ("a", "b", "c")
    assert out.missing == ()
    assert out.confidence == pytest.approx(1 / 3)
    # Two lighter models outvote the heaviest one.
    out = combine_outputs(
        Selection(("a", "b", "c"), {"a": 0.4, "b": 0.35, "c": 0.25}),
        {"a": np.array([1]), "b": np.array([2], dtype=np.int32), "c": np.array([2])},
    )
    assert out.output.tolist() == [2]
    assert out.confidence == pytest.approx(2 / 3)


def test_a_tied_vote_goes_to_the_earliest_model() -> None:
    out = combine_outputs(ABC, {"a": np.array(1), "b": np.array(2), "c": np.array(2)})
    assert out.output == 1  # 0.5 against 0.3 + 0.2


def test_text_labels_vote_by_value() -> None:
    out = combine_outputs(
        ABC,
        {
            "a": np.array([b"cat"], dtype=object),
            "b": np.array([b"dog"], dtype=object),
            "c": np.array([b"dog"], dtype=object),
        },
        kind="label",
    )
    assert out.output.tolist() == [b"cat"]
    assert out.confidence == pytest.approx(1 / 3)


def test_class_scores_are_averaged_with_weights_renormalised_over_who_answered() -> None:
    outputs = {"b": np.array([0.9, 0.1], dtype=np.float32), "c": np.array([0.4, 0.6])}
    out = combine_outputs(ABC, outputs)
    # a is late: b and c weigh 0.3 / 0.5 and 0.2 / 0.5.
    np.testing.assert_allclose(out.output, [0.6 * 0.9 + 0.4 * 0.4, 0.6 * 0.1 + 0.4 * 0.6])
    assert out.output.dtype == np.float32
    assert out.answered == ("b", "c")
    assert out.missing == ("a",)
    # b agrees with the argmax (class 0), c does not, a did not answer.
    assert out.confidence == pytest.approx(1 / 3)


def test_a_lone_straggler_survivor_cannot_claim_full_confidence() -> None:
    out = combine_outputs(ABC, {"c": np.array([0.1, 0.9])})
    np.testing.assert_array_equal(out.output, [0.1, 0.9])
    assert out.answered == ("c",)
    assert out.missing == ("a", "b")
    assert out.confidence == pytest.approx(1 / 3)


def test_regression_values_are_averaged_and_agree_within_tolerance() -> None:
    outputs = {"a": np.array([10.0]), "b": np.array([10.5]), "c": np.array([30.0])}
    out = combine_outputs(ABC, outputs, rtol=0.5)
    assert out.output[0] == pytest.approx(0.5 * 10 + 0.3 * 10.5 + 0.2 * 30)  # 14.15
    assert out.confidence == pytest.approx(2 / 3)  # 10 and 10.5 within 50% of 14.15
    out = combine_outputs(ABC, outputs, rtol=0.0, atol=0.0)
    assert out.confidence == 0.0


def test_outputs_are_stacked_with_the_models_own_order_not_the_dicts() -> None:
    outputs = {"c": np.array([0.0]), "a": np.array([1.0])}
    out = combine_outputs(ABC, outputs)
    assert out.answered == ("a", "c")
    assert out.output[0] == pytest.approx(0.5 / 0.7)


def test_zero_weights_fall_back_to_equal_weights() -> None:
    selection = Selection(("a", "b"), {"a": 0.0, "b": 0.0})
    out = combine_outputs(selection, {"a": np.array([1.0]), "b": np.array([3.0])})
    assert out.output[0] == 2.0


@pytest.mark.parametrize(
    ("outputs", "kind", "message"),
    [
        ({"a": np.zeros(2), "b": np.zeros(3)}, "auto", "disagree on the output shape"),
        (
            {"a": np.array([0.5]), "b": np.array([b"x"], dtype=object)},
            "auto",
            "not numeric",
        ),
        ({"a": np.array(0.5)}, "scores", "outputs one value"),
    ],
)
def test_incompatible_outputs_are_a_model_error(outputs: dict, kind: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        combine_outputs(ABC, outputs, kind=kind)  # type: ignore[arg-type]


def test_nothing_to_combine_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="at least one"):
        combine_outputs(ABC, {"z": np.zeros(1)})


def test_exp4_combines_with_its_own_parameters() -> None:
    policy = POLICIES["exp4"](["a", "b"], {"output": "regression", "agreement_atol": 5.0})
    selection = policy.select("")
    assert selection.models == ("a", "b")
    assert selection.weights == {"a": 0.5, "b": 0.5}
    out = policy.combine("", selection, {"a": np.array([0.0, 0.0]), "b": np.array([4.0, 8.0])})
    np.testing.assert_array_equal(out.output, [2.0, 4.0])
    assert out.confidence == 1.0  # every value within 5 of the mean


@pytest.mark.parametrize("name", ["exp3", "epsilon_greedy", "thompson", "fixed"])
def test_single_model_policies_answer_with_the_chosen_output(name: str) -> None:
    policy = POLICIES[name](["a", "b"], seed=0)
    selection = policy.select("")
    (chosen,) = selection.models
    out = policy.combine("", selection, {chosen: np.array([7.0])})
    assert out.output.tolist() == [7.0]
    assert (out.answered, out.confidence, out.missing) == ((chosen,), 1.0, ())
    with pytest.raises(ValueError, match="no output from the selected model"):
        policy.combine("", selection, {"other": np.array([1.0])})
