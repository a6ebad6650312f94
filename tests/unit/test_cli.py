from __future__ import annotations

import pytest

from corral import __version__
from corral.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"corral version {__version__}"


def test_no_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "not implemented yet" in " ".join(capsys.readouterr().err.split())
