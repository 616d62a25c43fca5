"""Shared test helpers."""

import numpy as np
import pytest
from typer.testing import CliRunner

from frnn_cli.cli import app


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def cli():
    """Invoke the frnn app; returns the Result (exit code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke
