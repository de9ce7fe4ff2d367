"""``wukong experiment``: the outcome's table, plot and JSON, and one experiment end to end."""

from __future__ import annotations

import json

import matplotlib.image

from wukong.cli import main
from wukong.experiments.outcome import Claim, Outcome


def test_outcome_table_plot_and_json(tmp_path):
    outcome = Outcome("demo", "A demo", ["0 ms", "100 ms"], ["fast", "slow"])
    outcome.seconds = {"0 ms": {"fast": 1.0, "slow": 2.5}, "100 ms": {"fast": 1.5}}
    outcome.claims.append(Claim("fast beats slow", "2.50x", True))
    table = outcome.table()
    assert "A demo" in table and "2.500 s" in table and "fast beats slow | 2.50x | yes" in table
    assert table.splitlines()[4].rstrip().endswith("-")  # the missing cell
    picture, data = outcome.save(tmp_path)
    assert matplotlib.image.imread(picture).shape[1] >= 700
    assert json.loads(data.read_text())["seconds"]["0 ms"]["slow"] == 2.5


def test_design_path_runs_and_its_claims_hold(tmp_path, capsys):
    assert main(["experiment", "design-path", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "centralized, 1 invoker" in printed and "| yes" in printed and "| NO" not in printed
    assert (tmp_path / "design-path.png").is_file()
    seconds = json.loads((tmp_path / "design-path.json").read_text())["seconds"]
    for row in seconds.values():
        assert row["decentralized"] < row["centralized, 16 invokers"] < row["centralized, 1 invoker"]
