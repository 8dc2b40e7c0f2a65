#!/usr/bin/env python3
"""Build (once) the Debian base image the test and demo containers run.

No container registry is reachable from here, so the image is made from
Debian packages: ``debootstrap`` a minbase bookworm root with systemd,
python3 and the few tools Ansible needs, ``docker import`` it, then add a
small Dockerfile layer that trusts the site's CA certificates and makes
systemd behave as PID 1 in a container.

The tag is derived from everything that goes into the image (recipe,
mirror, packages, Dockerfile, certificates), so an unchanged recipe is a
cache hit and a changed one builds a new image. Sites with a registry set
``HPCGW_BASE_IMAGE`` to their own image and nothing is built.

Settings (environment):

``HPCGW_BASE_IMAGE``
    use this image as it is (no build).
``HPCGW_DEBIAN_MIRROR``
    Debian mirror for debootstrap and apt inside the image
    (default ``http://deb.debian.org/debian``).
``HPCGW_DEBIAN_SECURITY_MIRROR``
    security mirror (default ``http://deb.debian.org/debian-security``).
``HPCGW_CA_BUNDLE``
    PEM bundle whose certificates the image trusts; default: the host's
    system bundle, so a TLS-inspecting proxy the host trusts works inside.
    Set it to an empty string to add nothing.
``HPCGW_EXTRA_CA_CERTS``
    more PEM files to trust, separated by ``:``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RECIPE_VERSION = "3"
IMAGE_REPO = "hpc-gateway/base"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "procps",
    "ca-certificates",
    "curl",
)
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"

DOCKERFILE = """\
FROM {base}
ENV container=docker LANG=C.UTF-8
COPY ca/ /usr/local/share/ca-certificates/hpcgw/
COPY sources.list /etc/apt/sources.list
# Lists are dropped to keep the image small and dated to 1970 so that apt's
# cache_valid_time (Ansible's apt module) sees them as stale and updates.
RUN update-ca-certificates \\
 && systemctl mask getty.target console-getty.service systemd-udevd.service \\
      systemd-udev-trigger.service systemd-remount-fs.service \\
      sys-kernel-debug.mount sys-kernel-tracing.mount \\
      systemd-logind.service \\
 && systemctl set-default multi-user.target \\
 && rm -f /etc/machine-id /var/lib/dbus/machine-id \\
 && touch /etc/machine-id \\
 && printf 'path-exclude /usr/share/doc/*\\npath-exclude /usr/share/man/*\\n' \\
      > /etc/dpkg/dpkg.cfg.d/01-nodoc \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/apt/lists/partial \
 && touch -d @0 /var/lib/apt/lists/partial /var/lib/apt/lists
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the image's content."""

    mirror: str = DEFAULT_MIRROR
    security_mirror: str = DEFAULT_SECURITY_MIRROR
    packages: tuple[str, ...] = PACKAGES
    certificates: tuple[str, ...] = field(default_factory=tuple)

    def sources_list(self) -> str:
        return (
            f"deb {self.mirror} {SUITE} main\n"
            f"deb {self.mirror} {SUITE}-updates main\n"
            f"deb {self.security_mirror} {SUITE}-security main\n"
        )

    def rootfs_digest(self) -> str:
        """What debootstrap produces depends only on these."""
        return _digest(RECIPE_VERSION, SUITE, self.sources_list(), " ".join(self.packages))

    def digest(self) -> str:
        return _digest(self.rootfs_digest(), DOCKERFILE, *self.certificates)

    def tag(self) -> str:
        return f"{IMAGE_REPO}:{SUITE}-{self.digest()}"


def split_pem(text: str) -> list[str]:
    """Return each certificate of a PEM bundle, normalised, in order."""
    certs: list[str] = []
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line == PEM_BEGIN:
            current = [line]
        elif line == PEM_END and current is not None:
            current.append(line)
            certs.append("\n".join(current) + "\n")
            current = None
        elif current is not None and line:
            current.append(line)
    return certs


def collect_certificates(paths: list[Path]) -> tuple[str, ...]:
    """Unique certificates from the given PEM files, sorted for a stable tag."""
    seen: set[str] = set()
    for path in paths:
        try:
            text = path.read_text(encoding="ascii", errors="ignore")
        except OSError as exc:
            raise SystemExit(f"base_image: cannot read CA file {path}: {exc}") from exc
        certs = split_pem(text)
        if not certs:
            raise SystemExit(f"base_image: {path} holds no PEM certificate")
        seen.update(certs)
    return tuple(sorted(seen))


def recipe_from_env(env: dict[str, str]) -> Recipe:
    bundle = env.get("HPCGW_CA_BUNDLE", DEFAULT_CA_BUNDLE)
    paths = [Path(bundle)] if bundle else []
    paths += [Path(p) for p in env.get("HPCGW_EXTRA_CA_CERTS", "").split(":") if p]
    return Recipe(
        mirror=env.get("HPCGW_DEBIAN_MIRROR", DEFAULT_MIRROR),
        security_mirror=env.get("HPCGW_DEBIAN_SECURITY_MIRROR", DEFAULT_SECURITY_MIRROR),
        certificates=collect_certificates(paths),
    )


def image_exists(tag: str) -> bool:
    return subprocess.run(
        ["docker", "image", "inspect", tag],
        capture_output=True, check=False,
    ).returncode == 0


def ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if os.geteuid() != 0:
        raise SystemExit("base_image: debootstrap is missing; install it (apt-get install debootstrap)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], check=True, env=env)


def build(recipe: Recipe, workdir: Path) -> str:
    tag = recipe.tag()
    rootfs_tag = f"{IMAGE_REPO}-rootfs:{SUITE}-{recipe.rootfs_digest()}"
    if not image_exists(rootfs_tag):
        ensure_debootstrap()
        root = workdir / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase",
             "--include=" + ",".join(recipe.packages),
             SUITE, str(root), recipe.mirror],
            check=True,
        )
        (root / "etc/apt/sources.list").write_text(recipe.sources_list(), encoding="utf-8")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", rootfs_tag], stdin=tar.stdout, check=True,
                       stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise SystemExit("base_image: tar of the debootstrap root failed")
        shutil.rmtree(root)
    context = workdir / "context"
    (context / "ca").mkdir(parents=True)
    for index, cert in enumerate(recipe.certificates):
        (context / "ca" / f"site-{index:03d}.crt").write_text(cert, encoding="ascii")
    (context / "sources.list").write_text(recipe.sources_list(), encoding="utf-8")
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=rootfs_tag), encoding="utf-8")
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True,
                   stdout=subprocess.DEVNULL)
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-tag", action="store_true",
                        help="print the tag the current recipe maps to and exit")
    args = parser.parse_args(argv)
    override = os.environ.get("HPCGW_BASE_IMAGE", "")
    if override:
        print(override)
        return 0
    recipe = recipe_from_env(dict(os.environ))
    tag = recipe.tag()
    if args.print_tag or image_exists(tag):
        print(tag)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="hpcgw-image-", dir="/var/tmp"))
    try:
        print(build(recipe, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
