"""Settings that end up as SQL identifiers are validated at load, whatever quoting the SQL has."""

from __future__ import annotations

import pytest

from glide.config import ConfigError, load_settings

CRAFTED = 'glide"; DROP TABLE x; --'


@pytest.mark.parametrize("value", [CRAFTED, "", "1abc", "a-b", "a b", "x" * 64, "glide\n"])
def test_a_crafted_postgres_schema_fails_at_load_naming_the_variable(value):
    with pytest.raises(ConfigError, match="GLIDE_POSTGRES_SCHEMA"):
        load_settings(postgres_schema=value)


def test_the_schema_from_the_environment_is_validated_too(monkeypatch):
    monkeypatch.setenv("GLIDE_POSTGRES_SCHEMA", CRAFTED)
    with pytest.raises(ConfigError, match="GLIDE_POSTGRES_SCHEMA"):
        load_settings()


@pytest.mark.parametrize("value", ["glide", "Glide_2", "_x", "x" * 63])
def test_safe_identifiers_load(value):
    assert load_settings(postgres_schema=value, feast_project=value).postgres_schema == value


def test_a_crafted_feast_project_fails_at_load(monkeypatch):
    with pytest.raises(ConfigError, match="GLIDE_FEAST_PROJECT"):
        load_settings(feast_project=CRAFTED)
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", CRAFTED)
    with pytest.raises(ConfigError, match="GLIDE_FEAST_PROJECT"):
        load_settings()


def test_the_feast_config_refuses_a_crafted_project(monkeypatch, tmp_path):
    """streams.feast_config reads GLIDE_FEAST_PROJECT itself (the online table names start with it)."""
    from streams.feast_config import repo_config_dict

    settings = load_settings(data_dir=str(tmp_path))
    assert repo_config_dict(settings, "ok_project")["project"] == "ok_project"
    with pytest.raises(ConfigError, match="GLIDE_FEAST_PROJECT"):
        repo_config_dict(settings, CRAFTED)
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", 'p" --')
    with pytest.raises(ConfigError, match="GLIDE_FEAST_PROJECT"):
        repo_config_dict(settings)


def test_a_bad_redis_url_error_hides_the_password(tmp_path):
    from streams.feast_config import repo_config_dict

    settings = load_settings(data_dir=str(tmp_path), profile="cluster", redis_url="http://:redis-secret@host:1/0")
    with pytest.raises(ConfigError) as info:
        repo_config_dict(settings, "glide")
    assert "redis-secret" not in str(info.value) and "GLIDE_REDIS_URL" in str(info.value)
