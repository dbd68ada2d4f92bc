"""A first end-to-end check: the example schedule's model equals its simulation."""

from convsched.cli.evaluate import example_schedule
from convsched.model import evaluate
from convsched.simulate import simulate


def test_example_schedule_model_equals_walk():
    s = example_schedule()
    sim = simulate(s)
    assert sim.output_ok
    assert sim.traffic == evaluate(s)
