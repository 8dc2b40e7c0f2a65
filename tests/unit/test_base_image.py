from __future__ import annotations

from pathlib import Path

import pytest

import base_image

CERT_A = "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n"
CERT_B = "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n"


def test_split_pem_keeps_each_certificate() -> None:
    bundle = "# comment\n" + CERT_A + "junk\n" + CERT_B.replace("\n", "\r\n")
    assert base_image.split_pem(bundle) == [CERT_A, CERT_B]


def test_collect_certificates_dedupes_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text(CERT_B + CERT_A)
    (tmp_path / "b.pem").write_text(CERT_A)
    certs = base_image.collect_certificates([tmp_path / "a.pem", tmp_path / "b.pem"])
    assert certs == tuple(sorted({CERT_A, CERT_B}))


def test_collect_certificates_refuses_a_file_without_certificates(tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_text("not a cert\n")
    with pytest.raises(SystemExit, match="holds no PEM certificate"):
        base_image.collect_certificates([tmp_path / "empty.pem"])


def test_tag_follows_the_recipe() -> None:
    plain = base_image.Recipe()
    with_ca = base_image.Recipe(certificates=(CERT_A,))
    other_mirror = base_image.Recipe(mirror="http://mirror.example/debian")
    assert plain.tag() == base_image.Recipe().tag()
    assert len({plain.tag(), with_ca.tag(), other_mirror.tag()}) == 3
    # Certificates change only the top layer, not the debootstrap root.
    assert plain.rootfs_digest() == with_ca.rootfs_digest()
    assert plain.rootfs_digest() != other_mirror.rootfs_digest()
    assert plain.tag().startswith("hpc-gateway/base:bookworm-")


def test_recipe_from_env_reads_bundle_and_extras(tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_text(CERT_A)
    (tmp_path / "extra.pem").write_text(CERT_B)
    recipe = base_image.recipe_from_env({
        "HPCGW_CA_BUNDLE": str(tmp_path / "bundle.pem"),
        "HPCGW_EXTRA_CA_CERTS": str(tmp_path / "extra.pem"),
        "HPCGW_DEBIAN_MIRROR": "http://mirror.example/debian",
    })
    assert set(recipe.certificates) == {CERT_A, CERT_B}
    assert "deb http://mirror.example/debian bookworm main" in recipe.sources_list()


def test_recipe_from_env_can_skip_the_host_bundle() -> None:
    assert base_image.recipe_from_env({"HPCGW_CA_BUNDLE": ""}).certificates == ()


def test_override_image_is_used_as_is(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HPCGW_BASE_IMAGE", "registry.example/site/base:1")
    assert base_image.main([]) == 0
    assert capsys.readouterr().out.strip() == "registry.example/site/base:1"
