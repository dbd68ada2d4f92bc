"""A first end-to-end check: the example schedule's model equals its simulation."""

from convsched.cli.evaluate import example_schedule
from convsched.model.closed_form import evaluate
from convsched.model.simulate import simulate


def test_example_schedule_model_equals_walk():
    s = example_schedule()
    sim = simulate(s)
    assert sim.output_ok
    assert sim.traffic == evaluate(s)
