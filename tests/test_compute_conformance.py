"""Every built-in compute backend, and the example plugin's, runs the conformance suite third parties run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIMULATED_FOR_TESTS, installed_plugin, lambda_settings
from wukong.testing.compute import ComputeConformance


class TestLocalProcesses(ComputeConformance):
    @pytest.fixture
    def job_settings(self, redis_url: str) -> dict[str, Any]:
        return {"compute": "local", "compute_options": {"workers": 2}, "storage": redis_url}


class TestLocalThreads(ComputeConformance):
    @pytest.fixture
    def job_settings(self) -> dict[str, Any]:
        return {"compute": "local", "compute_options": {"mode": "threads"}, "storage": "ideal"}


class TestSimulatedLambda(ComputeConformance):
    @pytest.fixture
    def job_settings(self, redis_url: str) -> dict[str, Any]:
        return {"compute": "simulated-lambda", "compute_options": SIMULATED_FOR_TESTS, "storage": redis_url}


class TestLambdaThroughTheInvokeApi(ComputeConformance):
    """The Lambda backend against the local Invoke API server (ministack's run is in test_lambda_emulator)."""

    @pytest.fixture
    def job_settings(self, lambda_endpoint: str, redis_url: str) -> dict[str, Any]:
        return {**lambda_settings(lambda_endpoint), "storage": redis_url}


class TestSerialPlugin(ComputeConformance):
    """The example third-party backend, pip-installed from tests/example_plugin."""

    @pytest.fixture(scope="class")
    def serial_plugin(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        package = Path(__file__).parent / "example_plugin"
        with installed_plugin(package, tmp_path_factory.mktemp("serial-plugin")):
            yield

    @pytest.fixture
    def job_settings(self, serial_plugin: None) -> dict[str, Any]:
        return {"compute": "serial", "storage": "ideal"}
