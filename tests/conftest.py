import os

from hypothesis import settings

pytest_plugins = ["tests.fakes.fixtures"]

# CI must be repeatable: the same examples every run, and no wall-clock deadline on a busy
# machine. Locally, hypothesis keeps exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
