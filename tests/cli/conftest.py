"""The CLI tests import gems from the store suite's sample file."""
from tests.store.conftest import filled, sample_file  # noqa: F401  (fixtures)
