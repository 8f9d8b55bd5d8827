"""The OJ-users file reader: valid input, and one clear error naming every problem."""

from __future__ import annotations

import pandas as pd
import pytest

from ojpanel.data.ojusers import read_oj_users, users_for_area
from ojpanel.errors import DataError


def _write(tmp_path, text: str):
    f = tmp_path / "users.csv"
    f.write_text(text, encoding="utf-8")
    return f


def test_reads_valid_file_with_aliases_and_padding(tmp_path):
    f = _write(
        tmp_path,
        "municipality,area,status\n"
        "0114,Ekonomiskt bistånd,user\n"
        "114,Social barn- och ungdomsvård,Non_User\n"
        "0180,barn och unga,other\n"
        "0180,äldreomsorg,user\n",
    )
    users = read_oj_users(f)
    assert list(users.columns) == ["municipality", "area", "status"]
    assert set(users["area"]) == {"ekonomiskt bistånd", "barn och unga", "äldreomsorg"}
    assert users.query("area == 'barn och unga' and municipality == '0114'")["status"].item() == "non_user"
    s = users_for_area(users, "barn och unga")
    assert s.to_dict() == {"0114": "non_user", "0180": "other"}


def test_every_problem_is_reported(tmp_path):
    f = _write(
        tmp_path,
        "municipality,area,status\n"
        "9999,ekonomiskt bistånd,user\n"
        "0114,hemtjänst,user\n"
        "0115,barn och unga,maybe\n"
        "0117,barn och unga,user\n"
        "0117,Social barn- och ungdomsvård,non_user\n",
    )
    with pytest.raises(DataError) as exc:
        read_oj_users(f)
    msg = str(exc.value)
    assert "unknown municipality code(s) ['9999']" in msg and "line 2" in msg
    assert "unknown area(s) ['hemtjänst']" in msg
    assert "bad status value(s) ['maybe']" in msg and "user" in msg
    assert "duplicate (municipality, area)" in msg and "0117" in msg


def test_missing_columns_empty_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="lacks column"):
        read_oj_users(_write(tmp_path, "kommun,area,status\n0114,äldreomsorg,user\n"))
    with pytest.raises(DataError, match="no rows"):
        read_oj_users(_write(tmp_path, "municipality,area,status\n"))
    with pytest.raises(DataError, match="does not exist"):
        read_oj_users(tmp_path / "nope.csv")


def test_frame_input_and_custom_municipalities():
    df = pd.DataFrame({"Municipality": ["0101"], "Area": ["äldreomsorg"], "Status": ["user"]})
    out = read_oj_users(df, municipalities=["0101"])
    assert out.iloc[0].tolist() == ["0101", "äldreomsorg", "user"]
    with pytest.raises(DataError, match="unknown municipality"):
        read_oj_users(df, municipalities=["0102"])


def test_reader_lives_in_the_data_layer():
    """The steering designs read the file without importing the replication package."""
    import subprocess
    import sys

    import ojpanel.replication
    from ojpanel.data import ojusers

    assert ojpanel.replication.read_oj_users is ojusers.read_oj_users
    code = (
        "import sys, pandas as pd\n"
        "from ojpanel.designs.steering import simulate_steering, oj_use_moderator\n"
        "sim = simulate_steering(1, n_municipalities=40, n_counties=4)\n"
        "assert oj_use_moderator(sim.panel, sim.users).available\n"
        "print(sorted(m for m in sys.modules if m.startswith('ojpanel.replication')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
