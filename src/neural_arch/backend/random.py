"""Seeded random number generation, explicit and reproducible.

``na.manual_seed(s)`` reseeds the default generator; ops that draw random
numbers (``rand``, ``randn``, dropout, initialisers) take an optional
``generator=`` and otherwise use the default one. A ``Generator`` wraps a
NumPy ``Generator`` (PCG64), and its state can be saved and restored, which
is what makes resumed training bit-identical.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A source of random numbers, like ``torch.Generator``."""

    def __init__(self, seed: int | None = None):
        self.manual_seed(np.random.SeedSequence().entropy if seed is None else seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.np = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """A JSON-serialisable snapshot of the generator."""
        return {"seed": self._seed, "bit_generator": self.np.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._seed = int(state["seed"])
        self.np.bit_generator.state = state["bit_generator"]


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (and return it), as ``torch.manual_seed``."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default generator from OS entropy; return the seed used."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    default_generator.manual_seed(s)
    return s


def get_generator(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).np


def initial_seed() -> int:
    """The seed the default generator was last seeded with (``torch.initial_seed``)."""
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default generator's state, for ``set_rng_state`` (torch returns a ByteTensor; here it is the
    generator's state dict: save it with pickle or keep it in memory, not in a safetensors file)."""
    return default_generator.get_state()


def set_rng_state(new_state: dict) -> None:
    """Restore the default generator to a state ``get_rng_state`` returned: the draws that followed it repeat."""
    default_generator.set_state(new_state)
