from __future__ import annotations

import pytest

from slurm_time import FilterModule, is_slurm_time, slurm_time_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 1800),
        ("0", 0),
        ("10:30", 630),
        ("04:00:00", 14400),
        ("100:00:00", 360000),
        ("2-00", 172800),
        ("1-12:30", 131400),
        ("1-00:00:00", 86400),
        (45, 2700),
    ],
)
def test_valid_times(text: str, seconds: int) -> None:
    assert slurm_time_seconds(text) == seconds
    assert is_slurm_time(text)


@pytest.mark.parametrize("text", ["UNLIMITED", "infinite", " Unlimited "])
def test_unlimited_is_none(text: str) -> None:
    assert slurm_time_seconds(text) is None


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1h", "-5", "10:60", "1:00:75", "1-24:00:00", "1-2-3", "00:10:00\n#SBATCH", "1.5"],
)
def test_invalid_times_raise(text: str) -> None:
    with pytest.raises(ValueError):
        slurm_time_seconds(text)
    assert not is_slurm_time(text)


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {"slurm_time_seconds", "is_slurm_time"}
