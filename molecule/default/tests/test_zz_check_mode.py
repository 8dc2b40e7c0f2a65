"""`--check` of the whole site.yml on the converged cluster reports no change
on any host (the scenario's only check-mode step). It runs beside the tests
that only wait on timers and change nothing of the cluster (conftest.py,
CHECK_MODE_OVERLAP), or here, last, when none of them is selected."""

from __future__ import annotations

import re

from conftest import check_mode_run

RECAP = re.compile(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def test_check_mode_reports_no_changes() -> None:
    rc, output = check_mode_run()
    assert rc == 0, output[-5000:]
    recap = {host: (int(changed), int(unreachable), int(failed))
             for host, changed, unreachable, failed in RECAP.findall(output)}
    assert {"hpcgw-gw", "hpcgw-ctl", "hpcgw-c1", "hpcgw-c2"} <= set(recap), output[-3000:]
    assert {host: counts for host, counts in recap.items() if counts != (0, 0, 0)} == {}, output[-5000:]
