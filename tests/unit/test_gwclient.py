"""The shared test client builds URLs under a base path, and stays
backward compatible at the root (the default scenario's usage)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "molecule" / "shared" / "files"))

from gwclient import Browser, normalize_base_path, prefix_of, resolved_name, split_base_path  # noqa: E402


@pytest.mark.parametrize(("raw", "want"), [
    ("", ""), ("/", ""), ("/jupyter", "/jupyter"), ("/jupyter/", "/jupyter"), ("jupyter", "/jupyter"),
    ("/a/b/", "/a/b"),
])
def test_normalize_base_path(raw: str, want: str) -> None:
    assert normalize_base_path(raw) == want


@pytest.mark.parametrize(("base", "want"), [
    ("https://gw", ""), ("https://gw/", ""), ("https://gw/jupyter", "/jupyter"), ("https://gw:8443/jupyter/", "/jupyter"),
])
def test_prefix_of(base: str, want: str) -> None:
    assert prefix_of(base) == want


@pytest.mark.parametrize(("base", "base_path", "want_base"), [
    ("https://gw", "", "https://gw"),                 # root, as before
    ("https://gw/jupyter", "", "https://gw/jupyter"),  # base path in the URL
    ("https://gw", "/jupyter/", "https://gw/jupyter"),  # base path given apart
    ("https://gw/other", "/jupyter", "https://gw/jupyter"),
])
def test_browser_base_and_origin(base: str, base_path: str, want_base: str) -> None:
    browser = Browser(base, "u", "p", base_path=base_path)
    assert browser.base == want_base
    assert browser.origin == "https://gw"
    # requests join absolute paths (which carry the prefix) to the origin only
    assert prefix_of(browser.base) + "/hub/login" == want_base[len("https://gw"):] + "/hub/login"


def test_old_positional_signature_still_works() -> None:
    browser = Browser("https://gw", "u", "p", {"X-Test": "1"})
    assert (browser.base, browser.extra) == ("https://gw", {"X-Test": "1"})


@pytest.mark.parametrize(("argv", "rest", "base_path"), [
    (["c", "whoami", "https://gw", "u", "p"], ["c", "whoami", "https://gw", "u", "p"], ""),
    (["c", "--base-path", "/jupyter", "whoami", "https://gw", "u", "p", "H=v"],
     ["c", "whoami", "https://gw", "u", "p", "H=v"], "/jupyter"),
    (["c", "whoami", "https://gw", "u", "p", "--base-path=/j/"], ["c", "whoami", "https://gw", "u", "p"], "/j/"),
])
def test_split_base_path(argv: list[str], rest: list[str], base_path: str) -> None:
    assert split_base_path(argv) == (rest, base_path)


@pytest.mark.parametrize(("host", "spec", "want"), [
    ("alice.hpcgw-gw.test", "hpcgw-gw.test=hpcgw-gw", "hpcgw-gw"),
    ("hpcgw-gw.test", "hpcgw-gw.test=hpcgw-gw", "hpcgw-gw"),
    ("ALICE.HPCGW-GW.TEST.", "hpcgw-gw.test=hpcgw-gw", "hpcgw-gw"),
    ("evilhpcgw-gw.test", "hpcgw-gw.test=hpcgw-gw", "evilhpcgw-gw.test"),
    ("hpcgw-gw", "hpcgw-gw.test=hpcgw-gw", "hpcgw-gw"),
    ("alice.hpcgw-gw.test", "", "alice.hpcgw-gw.test"),
])
def test_resolved_name_maps_a_domain_and_the_names_below_it(host: str, spec: str, want: str) -> None:
    assert resolved_name(host, spec) == want
