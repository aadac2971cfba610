"""`glide simulate ab` options: a bad setting is one clear line before anything starts."""

from __future__ import annotations

from click.testing import CliRunner

from glide_app.commands.simulate import simulate
from glide_app.jobs.ab.config import ABConfig


def test_bad_settings_fail_fast_with_the_field_named(tmp_path):
    got = CliRunner().invoke(simulate, ["ab", "--days", "0", "--data-dir", str(tmp_path)])
    assert got.exit_code == 2 and "days must be >= 1" in got.output
    got = CliRunner().invoke(simulate, ["ab", "--slots-per-day", "5", "--data-dir", str(tmp_path)])
    assert got.exit_code == 2 and "slots_per_day must divide 24" in got.output
    assert not any(tmp_path.iterdir())  # nothing was started


def test_quick_is_the_documented_size_and_options_override_it():
    quick = ABConfig.quick()
    assert (quick.users, quick.days) == (1000, 7)
    assert ABConfig.quick(days=3).days == 3 and ABConfig.quick(days=3).users == 1000
