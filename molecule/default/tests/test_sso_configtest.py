"""Non-basic SSO modes: rendered with their modules installed, configtest OK.

The playbook runs on hpcgw-browser's scratch Apache only, so conftest starts
it in the background when this module is selected (its CPU overlaps the
suite's waits); this test waits for it and reads its output."""

from __future__ import annotations

from conftest import background_playbook


def test_shibboleth_mellon_openidc_pass_configtest() -> None:
    rc, output = background_playbook("sso_configtest.yml")
    assert rc == 0, output[-6000:]
    for mode in ("shibboleth", "mellon", "openidc"):
        assert f"Configtest ({mode})" in output, output[-3000:]
