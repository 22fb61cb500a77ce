import contextlib
from typing import Any

from accelplan.v1 import models_pb2
from accelplan_server.rpc.answers import ANSWERS_PER_RPC, remembered


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    @remembered
    def Get(self, request: models_pb2.GetModelRequest, context: Any) -> models_pb2.GetModelResponse:
        self.calls += 1
        if request.model_id == "bad":
            raise ValueError("bad")
        return models_pb2.GetModelResponse(model=models_pb2.ModelInfo(id=request.model_id))


def test_repeated_requests_are_answered_once() -> None:
    c = Counting()
    a = c.Get(models_pb2.GetModelRequest(model_id="x"), None)
    b = c.Get(models_pb2.GetModelRequest(model_id="x"), None)
    assert a is b and c.calls == 1
    c.Get(models_pb2.GetModelRequest(model_id="y"), None)
    assert c.calls == 2


def test_failures_are_not_remembered_and_instances_are_separate() -> None:
    c, d = Counting(), Counting()
    for _ in range(2):
        with contextlib.suppress(ValueError):
            c.Get(models_pb2.GetModelRequest(model_id="bad"), None)
    assert c.calls == 2
    d.Get(models_pb2.GetModelRequest(model_id="x"), None)
    assert d.calls == 1


def test_table_is_bounded() -> None:
    c = Counting()
    for i in range(ANSWERS_PER_RPC + 10):
        c.Get(models_pb2.GetModelRequest(model_id=str(i)), None)
    assert len(c.__dict__["_answer_tables"]["Get"]) <= ANSWERS_PER_RPC
