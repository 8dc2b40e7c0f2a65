"""Shared fixtures of the frontend scenario's verifier."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterator

import pytest
import testinfra

GATEWAY = "hpcgw3-gateway"
ORIGIN = f"https://{GATEWAY}"
# The scenario runs the hub under a base path (jupyterhub_base_url /jupyter/,
# gateway_apache_base_path /jupyter): every test goes through the prefix.
PREFIX = "/jupyter"
BASE = ORIGIN + PREFIX
PASSWORDS = {
    "alice": "alice-test-pw",
    "Bob@EXAMPLE.ORG": "bob-test-pw",
    "carol": "carol-test-pw",
    "dave": "dave-test-pw",
    "erin": "erin-test-pw",
    "frank": "frank-test-pw",
    "mallory": "mallory-test-pw",
    "root": "root-test-pw",
    "daemon": "daemon-test-pw",
    "svcacct": "svcacct-test-pw",
    # a valid SSO login of a realm the hub does not allow (only EXAMPLE.ORG)
    "alice@OTHER.ORG": "other-test-pw",
}


def _host(name: str) -> Any:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="session")
def gateway() -> Any:
    return _host(GATEWAY)


@pytest.fixture(scope="session")
def node() -> Any:
    return _host("hpcgw3-node")


@pytest.fixture(scope="session")
def client(node: Any) -> Callable[..., dict[str, Any]]:
    """Run the stdlib test client on the node; returns its JSON result."""

    def run(*args: str) -> dict[str, Any]:
        cmd = node.run("python3 /usr/local/bin/gwclient.py " + " ".join(_quote(a) for a in args))
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture()
def hub_log(gateway: Any) -> Iterator[Callable[..., str]]:
    """Reads the hub's journal written since the test began (after a journal
    cursor, so nothing of an earlier test within the same second). The cursor
    is the hub's own last entry: journalctl -u ... --after-cursor skips the
    first entry of the unit when the cursor is another unit's (systemd 252)."""
    cursor = ""
    for line in gateway.check_output("journalctl -u jupyterhub -n 1 --show-cursor --no-pager -o cat").splitlines():
        if line.startswith("-- cursor: "):
            cursor = line[len("-- cursor: "):].strip()
    assert cursor, "no journal entry of the hub on the gateway"

    def read(wanted: str = "", seconds: float = 15) -> str:
        # The hub's output reaches the journal a moment after its response:
        # with `wanted`, read again until it is there (or `seconds` passed).
        deadline = time.monotonic() + seconds
        while True:
            text = gateway.check_output(
                f"journalctl -u jupyterhub --no-pager -o cat --after-cursor {_quote(cursor)}")
            if wanted in text or time.monotonic() > deadline:
                return text
            time.sleep(0.5)

    yield read


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def spellings(name: str, cases: bool = True) -> list[str]:
    """Every dash/underscore spelling of a header name, plus case variants.

    cases=False for requests made by gwclient: urllib sends every header name
    capitalized, so case variants would only repeat the same request (curl
    sends them as written).
    """
    parts = name.split("-")
    out = [parts[0]]
    for part in parts[1:]:
        out = [prefix + sep + part for prefix in out for sep in ("-", "_")]
    return out + ([name.lower(), name.upper(), name.lower().replace("-", "_")] if cases else [])
