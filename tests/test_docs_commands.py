"""Every shell command shown in README.md and docs/*.md runs against the bundled sample, so the docs stay true.

The convention the pages follow:

- In a ```console block, a line starting with ``$ `` is a command (a line ending in ``\\`` continues it); the other
  lines are its output, and each of them must be a line of what the command prints (a line ending in ``...`` the
  start of one; a line ``...`` stands for lines left out). ```sh and ```bash blocks are commands line by line
  (``#`` lines are comments). ```text blocks (usage synopses, output) are never run.
- A command ends with ``# exit N`` when the docs say it exits with N (1 for a reject under ``--fail-on``);
  otherwise it must exit 0.
- ``<!-- not-run: REASON -->`` on the line before a block skips it; REASON must be one of ``SKIP_REASONS``, so the
  skips stay few and named.
- A block that calls ``jq``, ``curl`` or ``zip`` runs where that program is installed; under ``CI=true`` a missing
  one fails the page instead.
- ``<!-- needs: postgis -->`` runs the block only when ``THREELINES_TEST_PG`` names a PostGIS server (its
  connection string is given to the block as ``SANXIAN_DB``); ``<!-- needs: dask -->`` only when Dask is installed;
  ``<!-- needs: server -->`` starts ``threelines serve`` on a free loopback port for the block (the docs' port 8000
  is replaced by it), when the serve extra is installed; ``<!-- needs: checkout -->`` runs it at the top of the
  checkout (development commands such as ``.venv/bin/ruff``), when the checkout has its ``.venv``.

The blocks of one page run in order in one temporary folder holding a copy of ``data/sample`` as
``data/sample``, with no layers configured (the bundled sample is what ``threelines`` uses without
``--layers``), so a page's later commands see the files its earlier ones wrote.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Why a block may be left out; nothing else may be.
SKIP_REASONS = {
    "installs from the package index": "pip / pipx / make demo fetch packages from the network",
    "runs the test suite": "make test is the suite this test is part of",
    "runs until stopped": "a server or a Dask cluster that serves until it is stopped",
    "another machine": "a systemd unit, a reverse proxy or a remote Dask scheduler",
    "a benchmark": "minutes of machine time, measuring speed rather than behaviour",
}
SHELLS = {"console", "sh", "bash", "shell"}
#: Programs besides threelines that examples call, which a bare machine may lack.
PROGRAMS = ("jq", "curl", "zip")
FENCE = re.compile(r"^(`{3,})\s*([\w-]*)")
MARK = re.compile(r"^<!--\s*(not-run|needs):\s*(.+?)\s*-->$")
EXIT = re.compile(r"#\s*exits? (\d+)\b")


@dataclass
class Block:
    """One shell block of a page: where it is, its commands, and what it needs."""

    page: Path
    line: int
    commands: list[str]
    shown: list[list[str]] = field(default_factory=list)
    skip: str | None = None
    needs: str | None = None


@dataclass
class Ran:
    """What one command did."""

    block: Block
    command: str
    expected: int
    shown: list[str] = field(default_factory=list)
    code: int | None = None
    output: str = ""
    seconds: float = 0.0

    def missing(self) -> list[str]:
        """The lines the docs show for this command that it did not print."""
        printed = [line.strip() for line in self.output.splitlines()]
        return [
            line
            for line in self.shown
            if not any(p == line or (line.endswith("...") and p.startswith(line[:-3].rstrip())) for p in printed)
        ]


@dataclass
class PageRun:
    """The commands of one page, run in order."""

    ran: list[Ran] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _join(lines: list[str]) -> list[str]:
    """Lines with trailing backslashes joined into whole commands."""
    commands, current = [], ""
    for line in lines:
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append(current + line)
        current = ""
    if current:
        commands.append(current)
    return [c.strip() for c in commands if c.strip()]


def blocks(page: Path) -> list[Block]:
    """The shell blocks of a page, with the mark on the line before each, if any."""
    found, lines = [], page.read_text("utf-8").split("\n")
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i].strip())
        if not opened:
            i += 1
            continue
        fence, lang, start = opened[1], opened[2].lower(), i
        body, i = [], i + 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i].strip())
            i += 1
        i += 1
        if lang not in SHELLS:
            continue
        shown: list[list[str]] = []
        if lang == "console":
            raw, taking = [], False
            for line in body:
                if line.startswith("$ "):
                    raw.append(line[2:])
                    taking = line.endswith("\\")
                    if not taking:
                        shown.append([])
                elif taking:
                    raw.append(line)
                    taking = line.endswith("\\")
                    if not taking:
                        shown.append([])
                elif shown and line and line != "...":
                    shown[-1].append(line)
        else:
            raw = [line for line in body if line and not line.startswith("#")]
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        block = Block(page, start + 1, _join(raw), shown)
        mark = MARK.match(previous)
        if mark and mark[1] == "not-run":
            block.skip = mark[2]
        elif mark:
            block.needs = mark[2]
        found.append(block)
    return found


ALL = {page: blocks(page) for page in PAGES}


def _available(needs: str | None, commands: tuple[str, ...] = ()) -> str | None:
    """Why a block that needs something cannot run here, or None."""
    for program in PROGRAMS:
        if any(re.search(rf"(^|[|(&;]\s*){program}\b", c) for c in commands) and shutil.which(program) is None:
            return f"{program} is not installed"
    if needs == "postgis" and not os.environ.get("THREELINES_TEST_PG"):
        return "THREELINES_TEST_PG is not set"
    if needs == "dask" and importlib.util.find_spec("distributed") is None:
        return "Dask is not installed (the dask extra)"
    if needs == "server" and importlib.util.find_spec("uvicorn") is None:
        return "the serve extra is not installed"
    if needs == "checkout" and not (ROOT / ".venv" / "bin").is_dir():
        return "the checkout has no .venv"
    return None


def _start_server(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """``threelines serve`` on a free loopback port, once it answers /healthz."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["threelines", "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return server, port
        except OSError:
            time.sleep(0.3)
    server.kill()
    server.wait()
    raise RuntimeError(f"threelines serve did not start on port {port}")


def _environment(home: Path) -> dict[str, str]:
    """A user's environment: the venv's scripts first, no layers configured, a language fixed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREELINES_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["THREELINES_CACHE"] = str(home / "cache")
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    env.pop("VIRTUAL_ENV", None)
    if os.environ.get("THREELINES_TEST_PG"):
        env["SANXIAN_DB"] = os.environ["THREELINES_TEST_PG"]
    return env


def run_page(page: Path, work: Path, env: dict[str, str]) -> PageRun:
    """Run the blocks of one page in order in its own folder."""
    shutil.copytree(ROOT / "data" / "sample", work / "data" / "sample")
    result = PageRun()
    for block in ALL[page]:
        why = _available(block.needs, tuple(block.commands))
        if block.skip or why:
            result.skipped.append(block)
            if why and why.endswith(" is not installed") and why.split()[0] in PROGRAMS:
                result.missing.append(f"{page.name}:{block.line}: {why}")
            continue
        server, port = _start_server(work, env) if block.needs == "server" else (None, 8000)
        try:
            for i, command in enumerate(block.commands):
                expected = EXIT.search(command)
                ran = Ran(block, command, int(expected[1]) if expected else 0, block.shown[i] if block.shown else [])
                started = time.perf_counter()
                proc = subprocess.run(
                    ["bash", "-o", "pipefail", "-c", command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
                    cwd=ROOT if block.needs == "checkout" else work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                ran.seconds = time.perf_counter() - started
                ran.code, ran.output = proc.returncode, proc.stdout + proc.stderr
                result.ran.append(ran)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[Path, PageRun]:
    """Every page's commands, the pages run side by side (each command is a whole process)."""
    home = tmp_path_factory.mktemp("docs-home")
    env = _environment(home)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {page: pool.submit(run_page, page, home / f"page{i}", env) for i, page in enumerate(PAGES)}
        return {page: future.result() for page, future in futures.items()}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_command_of_the_page_runs(runs, page):
    failed = [
        f"{r.block.page.name}:{r.block.line}: `{r.command}` exited {r.code}, the docs say {r.expected}\n{r.output[-3000:]}"
        for r in runs[page].ran
        if r.code != r.expected
    ]
    assert not failed, "\n\n".join(failed)
    if os.environ.get("CI") == "true":
        assert not runs[page].missing, "install these for the docs' examples"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_output_shown_is_what_the_command_prints(runs, page):
    wrong = {f"{r.block.page.name}:{r.block.line}: `{r.command}`": r.missing() for r in runs[page].ran if r.missing()}
    assert not wrong


def test_skips_are_few_and_named():
    skipped = [b for page in PAGES for b in ALL[page] if b.skip]
    assert {b.skip for b in skipped} <= set(SKIP_REASONS), [(b.page.name, b.line, b.skip) for b in skipped]
    assert {b.needs for page in PAGES for b in ALL[page] if b.needs} <= {"postgis", "dask", "server", "checkout"}
    ran = sum(len(b.commands) for page in PAGES for b in ALL[page] if not b.skip)
    assert len(skipped) <= 10
    assert ran >= 30


def test_the_docs_show_the_commands_of_every_task():
    # Each page about a command shows it being run on the sample, not only its synopsis.
    shown = {page.name: " ".join(c for b in ALL[page] if not b.skip for c in b.commands) for page in PAGES}
    for page, command in {
        "README.md": "threelines screen",
        "getting-started.md": "threelines --help",
        "reports.md": "threelines verify",
        "batch.md": "threelines batch",
        "siting.md": "threelines siting",
        "layers.md": "threelines init",
        "rules.md": "threelines rules test",
    }.items():
        assert command in shown[page], page


def test_a_wrong_command_would_be_caught(tmp_path):
    # The runner itself: a failing command is reported with its exit code, an expected exit code is honoured,
    # and output the docs show but the command does not print is found.
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ threelines screen no-such-file.shp\n$ false  # exit 1\n"
        "$ printf 'one\\ntwo words\\n'\none\n...\ntwo...\n$ echo three\nfour\n```\n",
        "utf-8",
    )
    ALL[page] = blocks(page)
    try:
        result = run_page(page, tmp_path / "work", _environment(tmp_path))
    finally:
        del ALL[page]
    assert [(r.command, r.expected, r.code, r.missing()) for r in result.ran] == [
        ("threelines screen no-such-file.shp", 0, 2, []),
        ("false  # exit 1", 1, 1, []),
        ("printf 'one\\ntwo words\\n'", 0, 0, []),
        ("echo three", 0, 0, ["four"]),
    ]
