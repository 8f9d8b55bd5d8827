"""The README is executable: every Python block and every command line in it runs.

* ```python blocks run in order, in one namespace, in a workspace that holds the small input
  files the examples name (``socio.csv``, ``users.csv``, ...).
* Every line of an indented command block runs in order in the same workspace (later lines use
  what earlier ones wrote). ``ojpanel`` lines run verbatim, with Kolada at a local test server
  (``OJPANEL_KOLADA_URL``): the first through the installed ``ojpanel`` console script, the others
  in this process through the same command-line application (a new interpreter per line would
  spend most of its time importing); ``make`` lines are checked with ``make -n`` (running
  ``make test`` inside the test suite would recurse).
* A command whose full run is long runs with one documented flag that makes it small, listed in
  :data:`SMALL` with the reason; a README command that is neither run nor listed fails the test.
* Commands named inline (in backticks) must exist and accept the flags they show.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import README_SMOKE_COMMAND
from kolada_server import serve

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: README commands that run here with an added documented flag, and why (none at present: the
#: README's session is sized to run as it stands).
SMALL: dict[str, tuple[list[str], str]] = {}

#: README commands that a session fixture has already run verbatim in the same workspace (its
#: outputs are there for the commands after it); running them again would only repeat the work.
RUN_BY_FIXTURE = {README_SMOKE_COMMAND: "smoke_pipeline"}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def command_lines() -> list[str]:
    """Lines of indented code blocks (after a blank line, four spaces), comments stripped."""
    out: list[str] = []
    for block in re.findall(r"(?:(?<=\n\n)|^)((?: {4}\S[^\n]*\n)+)", README):
        for line in block.splitlines():
            cmd = line.strip()
            cmd = re.sub(r"\s+#.*$", "", cmd)
            for part in re.split(r"\s+(?:;|&&)\s+", cmd):
                if part:
                    out.append(part)
    return out


def inline_commands() -> list[str]:
    return [c for c in re.findall(r"`(ojpanel [^`]+)`", README) if c not in command_lines()]


def test_the_readme_has_examples_to_run():
    assert len(python_blocks()) >= 4
    cmds = command_lines()
    assert any(c.startswith("make reproduce") for c in cmds) and any(c.startswith("make test") for c in cmds)
    assert sum(c.startswith("ojpanel ") for c in cmds) >= 10
    assert set(RUN_BY_FIXTURE) <= set(cmds), "a command the fixtures run is no longer in the README"
    assert not [c for c in cmds if not c.startswith(("ojpanel ", "make "))], "a command block holds something else"


@pytest.fixture(scope="module")
def workspace(readme_workspace):
    return readme_workspace


@pytest.fixture(scope="module")
def kolada_url():
    for srv in serve():
        yield srv.url("v3")


def _console_script() -> str:
    """The ``ojpanel`` script installed next to this interpreter (``python -m ojpanel`` if none)."""
    script = Path(sys.executable).with_name("ojpanel")
    return str(script) if script.exists() else ""


def test_every_command_line_runs(workspace, kolada_url, tmp_path, smoke_pipeline, monkeypatch):
    from ojpanel.cli import app

    monkeypatch.setenv("OJPANEL_KOLADA_URL", kolada_url)  # the subprocess inherits both
    monkeypatch.setenv("OJPANEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(workspace)
    runner = CliRunner()
    first = True
    script = _console_script()
    exe = [script] if script else [sys.executable, "-m", "ojpanel"]
    for cmd in command_lines():
        if cmd.startswith("make "):
            target = shlex.split(cmd)[1]
            r = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
            assert r.returncode == 0, f"README's `{cmd}`: no such make target\n{r.stderr}"
            continue
        if cmd in RUN_BY_FIXTURE:
            continue  # ran before this test, in this workspace (the fixture checks its exit code)
        args = shlex.split(cmd)[1:] + SMALL.get(cmd, ([], ""))[0]
        if first:  # the installed entry point, as a reader types it
            first = False
            p = subprocess.run([*exe, *args], cwd=workspace, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"README's `{cmd}` failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
            assert "Traceback" not in p.stderr, f"README's `{cmd}` printed a traceback:\n{p.stderr[-3000:]}"
            continue
        r = runner.invoke(app, args)
        assert r.exit_code == 0, f"README's `{cmd}` failed ({r.exit_code}):\n{r.output[-4000:]}\n{r.exception!r}"
        # a user error exits cleanly; anything else escaping the command is a crash
        assert r.exception is None or isinstance(r.exception, SystemExit), f"README's `{cmd}` raised {r.exception!r}"
        assert "Traceback" not in r.output, f"README's `{cmd}` printed a traceback:\n{r.output[-3000:]}"


def test_every_python_block_runs(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    namespace: dict = {}
    for k, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
        except Exception as exc:  # the message names the block that broke
            raise AssertionError(f"README python block {k + 1} failed: {exc!r}\n{block}") from exc


def test_inline_commands_exist_with_their_flags():
    runner = CliRunner()
    from ojpanel.cli import app

    for cmd in inline_commands():
        words = shlex.split(cmd)[1:]
        path = [w for w in words if not w.startswith("-")][:2]
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
        for depth in (2, 1):
            r = runner.invoke(app, [*path[:depth], "--help"])
            if r.exit_code == 0:
                break
        assert r.exit_code == 0, f"README names `{cmd}`, which is not a command"
        missing = [f for f in flags if f not in r.output]
        assert not missing, f"README's `{cmd}` shows flags the command lacks: {missing}"
