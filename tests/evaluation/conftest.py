"""Shared by the evaluation tests: the planted case, and one torch thread."""

import pytest
import torch

# The answer can only come from "4729"; the weather sentence is irrelevant to it.
PLANTED = "The secret code is 4729. Ignore the weather, which is sunny and warm today. What is the secret code?"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two cores shared with other jobs: two OpenMP threads then spin and run ~10x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
