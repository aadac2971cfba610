"""The SmolLM2 GGUF override comes through the settings (GLIDE_SMOLLM2_GGUF) or an explicit argument."""

from __future__ import annotations

import pytest

from glide_model.llm.backbone import BackboneError, smollm2_gguf_path


def test_the_settings_field_names_the_gguf_file(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("GLIDE_SMOLLM2_GGUF", str(gguf))
    assert smollm2_gguf_path() == gguf


def test_an_explicit_path_wins_and_a_missing_file_is_named(tmp_path, monkeypatch):
    gguf = tmp_path / "explicit.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("GLIDE_SMOLLM2_GGUF", str(tmp_path / "other.gguf"))
    assert smollm2_gguf_path(gguf) == gguf
    with pytest.raises(BackboneError, match="other.gguf.*GLIDE_SMOLLM2_GGUF"):
        smollm2_gguf_path()
