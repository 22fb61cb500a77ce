import contextlib
from typing import Any

from accelplan.v1 import models_pb2
from accelplan_server.core import cache
from accelplan_server.rpc.answers import ANSWERS_SHARE, remembered


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


def test_answers_are_bounded_in_bytes_and_an_answer_too_large_is_not_kept() -> None:
    cache.set_total_bytes(1 << 20)
    try:
        c = Counting()
        for i in range(2000):
            c.Get(models_pb2.GetModelRequest(model_id=f"{i:0200d}"), None)
        held, allowed = cache.usage()["answers"]
        assert allowed == int((1 << 20) * ANSWERS_SHARE)
        assert 0 < held <= allowed
        # The most recent answers are the ones kept.
        calls = c.calls
        c.Get(models_pb2.GetModelRequest(model_id=f"{1999:0200d}"), None)
        assert c.calls == calls
        big = "x" * (1 << 20)
        c.Get(models_pb2.GetModelRequest(model_id=big), None)
        c.Get(models_pb2.GetModelRequest(model_id=big), None)
        assert c.calls == calls + 2
    finally:
        cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)
