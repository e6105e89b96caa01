"""Per-context state: independent, bounded, and the global context is never lost."""

from __future__ import annotations

import pytest

from clipper.frontend.selection import POLICIES, Policy
from clipper.frontend.selection.contexts import ContextStates


def train(policy: Policy, context: str, best: str, rounds: int = 200) -> None:
    for _ in range(rounds):
        selection = policy.select(context)
        policy.update(context, selection, {m: float(m != best) for m in selection.models})


def best(policy: Policy, context: str) -> str:
    weights = policy.weights(context)
    return max(weights, key=weights.__getitem__)


@pytest.mark.parametrize("name", ["exp3", "exp4", "epsilon_greedy", "thompson"])
def test_contexts_learn_independently(name: str) -> None:
    policy = POLICIES[name](["a", "b", "c"], seed=0)
    train(policy, "user-1", "a")
    train(policy, "user-2", "c")
    assert best(policy, "user-1") == "a"
    assert best(policy, "user-2") == "c"
    assert policy.weights("") == policy.weights("never-seen")  # untouched global = fresh


def test_contexts_are_bounded_least_recently_used_first() -> None:
    policy = POLICIES["exp4"](["a", "b"], {"max_contexts": 3})
    train(policy, "", "b", 50)
    for i in range(3):
        train(policy, f"user-{i}", "a", 50)
    policy.select("user-0")  # user-0 is now the most recently used
    train(policy, "user-3", "a", 50)
    assert len(policy._states) == 4  # 3 contexts + the global one
    assert best(policy, "user-0") == "a"
    assert policy.weights("user-1") == {"a": 0.5, "b": 0.5}  # forgotten
    assert best(policy, "") == "b"  # the global context is never evicted


def test_a_flood_of_contexts_cannot_grow_memory() -> None:
    policy = POLICIES["thompson"](["a", "b"], {"max_contexts": 100}, seed=0)
    for i in range(5000):
        context = f"attacker-{i}"
        policy.update(context, policy.select(context), {"a": 0.0})
    assert len(policy._states) == 101


def test_reading_weights_creates_no_state() -> None:
    policy = POLICIES["exp3"](["a", "b"])
    for i in range(50):
        policy.weights(f"metrics-{i}")
    assert len(policy._states) == 1


def test_context_states_directly() -> None:
    made = []
    states: ContextStates[list[int]] = ContextStates(2, lambda: made.append(1) or [len(made)])
    assert states.get("") == [1]
    assert states.get("x") == [2]
    assert states.get("x") == [2]
    states.get("y")
    states.get("z")  # evicts x
    assert states.peek("x") is None
    assert list(states) == ["", "y", "z"]
    states.transform(lambda s: [*s, 0])
    assert states.get("") == [1, 0]
    with pytest.raises(ValueError, match="at least 1"):
        ContextStates(0, list)
