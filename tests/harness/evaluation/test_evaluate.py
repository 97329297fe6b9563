"""The evaluation entry point: the device reaches a task's scorer and metric models."""

import pathbench.tasks  # noqa: F401  (registers the tasks)
from pathbench.evaluation.evaluate import check_task, with_device


def test_the_evaluation_device_reaches_tasks_that_take_one():
    assert with_device("unconditional", {}, "cuda") == {"device": "cuda"}
    assert with_device("headline_lead", {"response_tokens": 8}, "cuda") == {"response_tokens": 8, "device": "cuda"}
    assert with_device("unconditional", {"device": "cpu"}, "cuda") == {"device": "cpu"}  # an explicit one wins
    assert check_task("unconditional", with_device("unconditional", {}, "meta")).device == "meta"
    assert with_device("no_such_task", {}, "cuda") == {}  # check_task names the known tasks
