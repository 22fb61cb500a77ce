"""The per-connection budget of unread answers."""

from __future__ import annotations

from accelplan_server.runtime.interceptors import ConnectionBudget


def test_a_connection_is_refused_past_its_budget_until_it_reads() -> None:
    budget = ConnectionBudget(limit_bytes=10)
    assert budget.take("a", 6)
    assert not budget.take("a", 5)  # over: nothing counted
    assert budget.held["a"] == 6
    assert budget.take("b", 10)  # other connections have their own budget
    budget.give("a", 6)
    assert "a" not in budget.held
    assert budget.take("a", 10)
