"""Issue 13, item 3: the hub's state backed up online and restored.

With alice's server running as a batch job and her browser's cookies kept
(spawnclient session-save), the backup unit copies the hub's state while
the hub runs (same PID) into a root-only archive. The restore playbook
refuses a corrupt archive before it touches the hub. Then the hub's
database and cookie secret are wiped (the hub stopped first, as a lost
disk would leave it), and playbooks/restore.yml (ansible-playbook against
the Molecule inventory, as an operator runs it) brings them back: alice's
kept session is valid without a new login (the hub and her server answer
her old cookies, no redirect to a login), the hub lists her server, and the
same batch job answers through Apache.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Callable

from testinfra.host import Host

from conftest import playbook_env, user_jobs

PRESET = json.dumps({"profile": "debug-1c"})
BACKUP_DIR = "/var/backups/jupyterhub"
DB = "/var/lib/jupyterhub/jupyterhub.sqlite"
COOKIE_SECRET = "/etc/jupyterhub/secrets/cookie_secret"
SESSION = "/var/tmp/hpcgw-test-alice-session.json"  # on the controller, where spawnclient runs
CORRUPT = "/root/hpcgw-test-corrupt.tar.gz"


def _restore(archive: str) -> subprocess.CompletedProcess[str]:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    project = scenario.parents[1]
    env = playbook_env()
    return subprocess.run(
        ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent),
         str(project / "playbooks" / "restore.yml"), "-e", json.dumps({"jupyterhub_restore_archive": archive})],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )


def _hub_pid(gateway: Host) -> str:
    return gateway.check_output("systemctl show -p MainPID --value jupyterhub").strip()


def _session_is_valid(session: dict[str, Any]) -> None:
    assert session["hub_status"] == 200 and not session["hub_redirected"], session
    assert session["hub_answer"]["name"] == "alice", session
    assert session["hub_answer"]["servers"][""]["ready"] is True, session
    assert session["server_status"] == 200 and not session["server_redirected"], session
    assert "started" in session["server_answer"], session  # jupyter_server's /api/status


def test_backup_online_then_restore_keeps_the_server_its_job_and_the_session(
    client: Callable[..., dict[str, Any]], gateway: Host, controller: Host, quiet: None
) -> None:
    started = client("start", "alice", PRESET)
    assert started.get("ready") is True, started
    (job_id, _, job_node, _), = user_jobs(gateway, "alice")
    try:
        saved = client("session-save", "alice", SESSION)
        assert "jupyterhub-user-alice" in saved["cookies"] and "jupyterhub-hub-login" in saved["cookies"], saved
        _session_is_valid(client("session-check", "alice", SESSION))  # the check itself works before

        pid = _hub_pid(gateway)
        gateway.check_output("systemctl start hpcgw-hub-backup.service")  # oneshot: returns when done
        archive = gateway.check_output(f"ls -1 {BACKUP_DIR}/hub-backup-*.tar.gz | tail -n 1").strip()
        assert _hub_pid(gateway) == pid, "the backup stopped or restarted the hub"
        assert gateway.file(archive).user == "root" and gateway.file(archive).mode == 0o600
        assert gateway.file(BACKUP_DIR).user == "root" and gateway.file(BACKUP_DIR).mode == 0o700
        assert gateway.service("hpcgw-hub-backup.timer").is_enabled
        members = gateway.check_output(f"tar -tzf {archive}").split()
        assert sorted(members) == ["MANIFEST.json", "cookie_secret", "gateway_secret", "jupyterhub.sqlite",
                                   "jupyterhub_config.py", "metrics_token", "proxy.env"], members

        # A corrupt archive is refused before the hub is touched.
        gateway.check_output(f"head -c 3000 {archive} > {CORRUPT}")
        refused = _restore(CORRUPT)
        assert refused.returncode != 0
        # The failure's message is on stdout or stderr (molecule's verifier
        # environment sends failed tasks to stderr), folded across lines.
        said = " ".join((refused.stdout + refused.stderr).split())
        assert "Restore refused, nothing was changed" in said, refused.stdout[-2000:] + refused.stderr[-2000:]
        assert _hub_pid(gateway) == pid

        # The hub's state is lost.
        gateway.check_output(f"systemctl stop jupyterhub && rm -f {DB} {COOKIE_SECRET}")
        restored = _restore(archive)
        assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
        assert "jupyterhub.sqlite, cookie_secret" in " ".join((restored.stdout + restored.stderr).split()), \
            restored.stdout[-3000:]
        assert gateway.file(DB).user == "jupyterhub" and gateway.file(COOKIE_SECRET).mode == 0o600
        assert gateway.file(COOKIE_SECRET).user == "jupyterhub"

        # Her old cookies still work, no new login; the hub lists her server.
        _session_is_valid(client("session-check", "alice", SESSION))
        # The same job, and its server runs her code through Apache.
        assert [job[0] for job in user_jobs(gateway, "alice")] == [job_id]
        ran = client("run", "alice", "import socket\nprint(socket.gethostname())")
        assert ran.get("stdout", "").split() == [job_node], ran
    finally:
        gateway.run(f"rm -f {CORRUPT}")
        controller.run(f"rm -f {SESSION}")
        gateway.run("systemctl is-active --quiet jupyterhub || systemctl start jupyterhub")
        assert client("stop", "alice").get("stopped") is True
