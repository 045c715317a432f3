import os

import pytest
from hypothesis import HealthCheck, settings

# Keras reads its backend when first imported: torch, set here, before any test module imports keras (an import
# sorted above `from helpers import frameworks`, which sets it too, would otherwise find none and fail)
os.environ.setdefault("KERAS_BACKEND", "torch")

# the shared helpers (tests/helpers) assert too: pytest shows their failing values as it does the tests'
pytest.register_assert_rewrite("helpers")

# The property tests that take their size from the profile: "ci" keeps `make test` quick,
# "fuzz" (`make fuzz`) tries tens of thousands of generated programs.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "deep", max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
settings.load_profile("ci")
# "trial": a bounded run of the fuzz properties, PARAMSYM_FUZZ_EXAMPLES programs each (default 500), for a
# machine shared with others: pytest ... --hypothesis-profile=trial (docs/fuzzing.md)
settings.register_profile(
    "trial",
    max_examples=int(__import__("os").environ.get("PARAMSYM_FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def pytest_configure(config):
    # torchfree: a test that needs no framework (no torch, Keras, transformers), run where none is installed
    # (`pytest -m torchfree`); its module imports none at its top
    config.addinivalue_line("markers", "torchfree: needs no framework; runs where torch is not installed")


# the browser fixtures of the playground's tests (tests/test_playground*.py): Chromium on the built site, and the
# playground page after its first result
from helpers.playground_browser import browser, page  # noqa: E402, F401
