import pytest

from tests.helpers import seed_model


@pytest.fixture(scope="session")
def seed_sampler():
    """One compiled sampler of the seed's model, shared so the suite compiles its graphs once."""
    import aemix

    _, _, Y_rv = seed_model()
    return aemix.build_sampler(Y_rv)
