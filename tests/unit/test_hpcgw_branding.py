"""Branding and the announcement banner (issue 13, item 5).

The page templates of role jupyterhub are rendered as the hub renders them:
Jinja2 with autoescape, the template path of the gateway (a site's own
directory, role spawn_profiles' pages, role jupyterhub's branding pages) in
front of JupyterHub's own pages under "templates/" - here stubs with the
blocks JupyterHub 6.1.1's pages have (the real ones are checked by the
Molecule test through Apache). The banner's reader re-reads its file only
when it changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, PrefixLoader

import hpcgw_branding
from spawn_page import FakeSpawner, FakeUser

ROOT = Path(__file__).resolve().parents[2]
BRANDING = ROOT / "roles" / "jupyterhub" / "files" / "templates"
SPAWN_PROFILES = ROOT / "roles" / "spawn_profiles" / "files" / "templates"
STOCK = {
    "page.html": (
        "<title>{% block title %}JupyterHub{% endblock title %}</title>"
        "{% block stylesheet %}{% endblock stylesheet %}"
        "<nav>{% block logo %}<img src=\"{{ base_url }}logo\" alt=\"JupyterHub logo\">{% endblock logo %}"
        "<ul>{% block nav_bar_right_items %}<li id=\"logout\">Logout</li>{% endblock nav_bar_right_items %}</ul></nav>"
        "{% block announcement %}{% if announcement %}"
        "<div class=\"container text-center announcement alert alert-warning\">{{ announcement | safe }}</div>"
        "{% endif %}{% endblock announcement %}"
        "{% block main %}{% endblock main %}{% block script %}{% endblock script %}"),
    "home.html": ('{% extends "page.html" %}{% if announcement_home is string %}'
                  "{% set announcement = announcement_home %}{% endif %}"
                  '{% block main %}<a id="start">Start My Server</a>{% endblock main %}'),
    "spawn.html": ('{% extends "page.html" %}{% if announcement_spawn is string %}'
                   "{% set announcement = announcement_spawn %}{% endif %}"
                   "{% block main %}<form>stock</form>{% endblock main %}"),
    "token.html": '{% extends "page.html" %}{% block main %}tokens{% endblock main %}',
}
BRANDED = {"title": "Example HPC <script>alert(1)</script>", "help_url": "https://hpc.example.org/help?a=1&b=\"2\"",
           "help_text": "Help & docs",
           "texts": {"home": "Home <b>text</b>", "spawn": "Spawn text: pick a queue", "login": "Login text"}}


def render(name: str, site: dict[str, str] | None = None, spawn_profiles: bool = True, **ns: Any) -> str:
    paths = [str(SPAWN_PROFILES)] if spawn_profiles else []
    loaders = [PrefixLoader({"templates": DictLoader(STOCK)}, "/")]
    if site:
        loaders.append(DictLoader(site))
    loaders.append(FileSystemLoader(paths + [str(BRANDING)]))
    loaders.append(DictLoader(STOCK))  # JupyterHub appends its own directory to the path
    env = Environment(autoescape=True, loader=ChoiceLoader(loaders))
    defaults: dict[str, Any] = {"base_url": "/jupyter/hub/", "logo_url": "", "spawner": FakeSpawner(None),
                                "spawner_options_form": "", "url": "/jupyter/hub/spawn", "for_user": FakeUser(),
                                "user": FakeUser(), "error_message": "", "error_html_message": None}
    return env.get_template(name).render(**{**defaults, **ns})


def test_title_logo_and_help_link_are_on_every_page_and_escaped() -> None:
    for page in ("home.html", "spawn.html", "token.html"):
        html = render(page, hpcgw_branding=BRANDED, hpcgw_announcement="")
        assert "<title>Example HPC &lt;script&gt;alert(1)&lt;/script&gt;</title>" in html, page
        assert "<script>alert(1)" not in html, page
        assert 'id="hpcgw-site-title">Example HPC &lt;script&gt;' in html, page
        assert 'src="/jupyter/hub/logo"' in html and 'alt="Example HPC &lt;script&gt;alert(1)&lt;/script&gt; logo"' in html
        assert ('id="hpcgw-help" href="https://hpc.example.org/help?a=1&amp;b=&#34;2&#34;">Help &amp; docs</a>'
                in html), page
        assert '<li id="logout">Logout</li>' in html, page  # JupyterHub's own items stay


def test_each_page_shows_its_own_text_only() -> None:
    home = render("home.html", hpcgw_branding=BRANDED)
    spawn = render("spawn.html", hpcgw_branding=BRANDED)
    token = render("token.html", hpcgw_branding=BRANDED)
    assert 'id="hpcgw-page-text"><p>Home &lt;b&gt;text&lt;/b&gt;</p>' in home and "Spawn text" not in home
    assert "Spawn text: pick a queue" in spawn and "Home &lt;b&gt;" not in spawn
    assert "hpcgw-page-text" not in token
    # the stock spawn page (no spawn_profiles) gets it from role jupyterhub's spawn.html
    assert "Spawn text: pick a queue" in render("spawn.html", spawn_profiles=False, hpcgw_branding=BRANDED)


def test_the_banner_is_escaped_and_the_pages_own_notice_stays() -> None:
    notice = "Your last server was stopped by the idle culler"
    html = render("home.html", hpcgw_branding={}, hpcgw_announcement="Maintenance <script>x()</script>\nFriday",
                  announcement_home=notice)
    assert ('id="hpcgw-announcement" role="status">Maintenance &lt;script&gt;x()&lt;/script&gt;\nFriday</div>'
            in html)
    assert "<script>x()" not in html
    assert f'class="container text-center announcement alert alert-warning">{notice}</div>' in html


def test_without_branding_the_pages_are_jupyterhubs() -> None:
    html = render("home.html")
    assert "<title>JupyterHub</title>" in html and 'alt="JupyterHub logo"' in html
    for marker in ("hpcgw-help", "hpcgw-announcement", "hpcgw-page-text", "hpcgw-site-title"):
        assert f'id="{marker}"' not in html


def test_a_sites_own_page_template_comes_first_and_can_extend_the_branded_one() -> None:
    site = {"page.html": '{% extends "hpcgw_page.html" %}{% block script %}<p id="site">site footer</p>'
                         "{% endblock script %}"}
    html = render("token.html", site=site, hpcgw_branding=BRANDED, hpcgw_announcement="Banner")
    assert 'tokens<p id="site">site footer</p>' in html
    assert 'id="hpcgw-announcement"' in html and 'id="hpcgw-help"' in html


def test_the_announcement_file_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "announcement.txt"
    banner = hpcgw_branding.AnnouncementFile(str(path))
    assert banner(None) == ""  # no file: no banner
    path.write_text("  Maintenance on Friday\n")
    assert banner(None) == "Maintenance on Friday"
    stamp = path.stat().st_mtime_ns
    reads: list[str] = []
    real_open = open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        reads.append(str(args[0]))
        return real_open(*args, **kwargs)

    hpcgw_branding.open = counting_open  # type: ignore[attr-defined]
    try:
        assert [banner(None) for _ in range(5)] == ["Maintenance on Friday"] * 5
        assert reads == []  # unchanged file: one stat per page, no read
        tmp = tmp_path / "new.txt"
        tmp.write_text("Back to normal")  # replaced the way Ansible writes (rename)
        os.replace(tmp, path)
        os.utime(path, ns=(stamp, stamp))  # even with the old mtime: a new inode
        assert banner(None) == "Back to normal" and len(reads) == 1
    finally:
        del hpcgw_branding.open  # type: ignore[attr-defined]
    path.write_text("")
    assert banner(None) == ""  # empty file: no banner
    path.unlink()
    assert banner(None) == ""


def test_a_large_file_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "announcement.txt"
    path.write_text("x" * 10_000)
    assert len(hpcgw_branding.AnnouncementFile(str(path), max_bytes=100).read()) == 100


@pytest.mark.parametrize("content", [b"\xff\xfe broken utf-8", "Wartung am Freitag \u2013 ab 8 Uhr".encode()])
def test_any_bytes_give_text(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "announcement.txt"
    path.write_bytes(content)
    assert "Freitag" in hpcgw_branding.AnnouncementFile(str(path)).read() or "broken" in hpcgw_branding.AnnouncementFile(
        str(path)).read()
