"""tools/test_audit.py reports tests that cannot fail and parametrized
arguments a test never reads, and the repository's tests have none."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import test_audit

# The shape of the test issue 18 is about: it runs the playbook and checks nothing.
PREFLIGHT_LIKE = '''
import pytest
from ansible_run import run_playbook

@pytest.mark.parametrize(("change", "expected"), [({"ssh_submit_env": ["PATH; rm"]}, "ssh_submit_env")])
def test_wrong_settings_stop_the_play(tmp_path, change, expected):
    result = run_playbook("validate.yml", tmp_path, {"gateway": dict(change)})
'''
# A helper next to the tests that returns a result and checks nothing (as tests/unit/ansible_run.py).
ANSIBLE_RUN = '''
def run_playbook(playbook, tmp_path, groups):
    return subprocess.run(["ansible-playbook", playbook], check=False)
'''
# A helper next to the tests that asserts (as a conftest.py could hold).
CONFTEST = '''
def expect_refusal(result, expected):
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout
'''


def _findings(tmp_path: Path, source: str) -> list[tuple[str, str]]:
    """(test, reason) of each finding in a test file holding `source`, next to the two helper modules."""
    (tmp_path / "ansible_run.py").write_text(ANSIBLE_RUN)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(source))
    return [(finding.test, finding.reason) for finding in test_audit.audit([tmp_path])]


def test_the_preflight_case_is_reported_twice(tmp_path: Path) -> None:
    assert _findings(tmp_path, PREFLIGHT_LIKE) == [
        ("test_wrong_settings_stop_the_play", test_audit.NO_CHECK),
        ("test_wrong_settings_stop_the_play", "parametrized argument 'expected' never used"),
    ]


def test_the_preflight_case_with_its_asserts_is_clean(tmp_path: Path) -> None:
    mended = PREFLIGHT_LIKE + "    assert result.returncode != 0\n    assert expected in result.stdout\n"
    assert _findings(tmp_path, mended) == []


@pytest.mark.parametrize("source", [
    pytest.param('''
        from conftest import expect_refusal
        def test_x(): expect_refusal(run(), "name")
        ''', id="helper-imported-from-conftest"),
    pytest.param('''
        import conftest
        def test_x(): conftest.expect_refusal(run(), "name")
        ''', id="helper-of-an-imported-module"),
    pytest.param('''
        def _check(x): assert x
        def _check_twice(x): _check(x); _check(x)
        def test_x(): _check_twice(1)
        ''', id="helper-through-a-helper"),
    pytest.param('''
        def test_x():
            def post(body): assert body == "400"
            for body in ("a", "b"): post(body)
        ''', id="nested-helper-called"),
    pytest.param('''
        import pytest
        def test_x():
            with pytest.raises(ValueError, match="bad"): int("x")
        ''', id="with-pytest-raises"),
    pytest.param('''
        import pytest
        def test_x(): pytest.raises(ValueError, int, "x")
        ''', id="pytest-raises-callable-form"),
    pytest.param('''
        import pytest
        def test_x():
            if not ok(): pytest.fail("not ok")
        ''', id="pytest-fail"),
    pytest.param('''
        def test_x():
            for _ in range(3):
                if ok(): break
            else:
                raise AssertionError("never ok")
        ''', id="raise-assertion-error"),
    pytest.param('''
        import pytest
        class TestGroup:
            @pytest.mark.parametrize("n", [1, 2])
            async def test_x(self, n): assert await double(n) == 2 * n
        ''', id="async-method-of-a-test-class"),
    pytest.param('''
        import pytest
        @pytest.mark.parametrize("a, b", [(1, 2)])
        @pytest.mark.parametrize(argnames=["c"], argvalues=[3])
        @pytest.mark.parametrize("fixture_arg", [4], indirect=True)
        def test_x(a, b, c, fixture_arg): assert (lambda: a + b)() < c
        ''', id="every-parametrize-form"),
    pytest.param('''
        def helper_without_checks(): pass
        class Helper:
            def test_like_method(self): pass
        ''', id="no-tests-at-all"),
])
def test_tests_that_can_fail_are_accepted(tmp_path: Path, source: str) -> None:
    assert _findings(tmp_path, source) == []


@pytest.mark.parametrize(("source", "reason"), [
    ("def test_x(): assert True\n", test_audit.ALWAYS_TRUE),
    ("def test_x(): assert (compute() == 1, 'one')\n", test_audit.ALWAYS_TRUE),
    ("def test_x(): assert f'{compute()} ok'\n", test_audit.ALWAYS_TRUE),
    ("import pytest\ndef test_x(): pytest.skip('later')\n", test_audit.NO_CHECK),
    ("import pytest\ndef test_x(): pytest.raises(ValueError)\n", test_audit.NO_CHECK),
    ("from ansible_run import run_playbook\ndef test_x(tmp_path): run_playbook('x.yml', tmp_path, {})\n",
     test_audit.NO_CHECK),
    ("def test_x():\n    def never_called(): assert False\n", test_audit.NO_CHECK),
    ("def test_x():\n    raise RuntimeError('not an assertion')\n", test_audit.NO_CHECK),
    ("def test_x(): ...\n", test_audit.NO_CHECK),
    ("import pytest\n@pytest.mark.parametrize('n, m', [(1, 2)])\ndef test_x(n, m): assert n\n",
     "parametrized argument 'm' never used"),
    ("import pytest\n@pytest.mark.parametrize(['n'], [(1,)], indirect=['other'])\ndef test_x(n, other): assert other\n",
     "parametrized argument 'n' never used"),
])
def test_tests_that_cannot_fail_are_reported(tmp_path: Path, source: str, reason: str) -> None:
    assert _findings(tmp_path, source) == [("test_x", reason)]


def test_a_failed_test_class_method_is_named_with_its_class(tmp_path: Path) -> None:
    source = "class TestGroup:\n    def test_x(self): pass\n"
    assert _findings(tmp_path, source) == [("TestGroup::test_x", test_audit.NO_CHECK)]


def test_command_line_prints_path_line_test_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test_ok.py").write_text("def test_ok(): assert 1 + 1 == 2\n")
    assert test_audit.main([str(tmp_path)]) == 0
    (tmp_path / "test_sample.py").write_text("import pytest\n\n\ndef test_nothing(): pytest.skip()\n")
    assert test_audit.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{tmp_path / 'test_sample.py'}:4: test_nothing: {test_audit.NO_CHECK}\n"


def test_the_repository_has_no_test_that_cannot_fail(capsys: pytest.CaptureFixture[str]) -> None:
    files = test_audit.files_to_check(test_audit.default_roots())
    # The scan sees the unit tests and each scenario's verifier tests.
    for folder in ("tests/unit", "molecule/default/tests"):
        assert any(path.parent == test_audit.ROOT / folder for path in files), folder
    assert test_audit.main([]) == 0, capsys.readouterr().out
