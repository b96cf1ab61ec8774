"""`embedlab teach` as a class meets it: a real server started by the CLI (bm25 only, a fresh
embedding cache, a free port, a token), a kernel's websocket that refuses code, a page that
refuses a visitor without the token, and two Chromium sessions at once (Playwright, Debian's
Chromium), each typing its own query and candidate and seeing its own bars, no source shown.

The unit tests check the generated notebooks, the missing-Voilà message and the server's
refusal to start when the message filter could be bypassed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from embedlab.teach.server import ALLOWED_MESSAGES, Lesson, class_voila, write_notebooks
from tests.test_jupyterlab import _free_port, browser, stop_group  # noqa: F401 - the Chromium fixture, shared
from tests.tiers import tier

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 600  # priming bm25's run on seed + traps-zh into an empty cache, on a busy small CPU


# ---- unit tier: what is served, and what refuses to be served ----


def test_served_notebooks_hold_only_the_intro_and_the_explorer(tmp_path: Path) -> None:
    from embedlab.report.notebook_files import parameter_values
    from embedlab.report.prime import plan

    lesson = Lesson(("bm25",), ("seed",), "en", tmp_path / "cache")
    paths = write_notebooks(lesson, tmp_path / "work")
    assert sorted(p.name for p in paths) == ["results.ipynb", "trap.ipynb"]
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"], path.name
        assert "explorer" in nb.cells[0].source and not re.search(r"[\u4e00-\u9fff]", nb.cells[0].source)
        assert nb.cells[1].metadata["tags"] == ["parameters"]
        values = parameter_values(path)
        assert values["models"] == ["bm25"] and values["datasets"] == ["seed"], values
        assert values["cache_dir"] == str(tmp_path / "cache") and values["lang"] == "en", values
        compile(nb.cells[2].source, path.name, "exec")
        assert "lang=lang" in nb.cells[2].source, "the explorer speaks the lesson's language"
        if path.stem == "results":  # a student writes no file on the teacher's machine
            assert "export_path=None" in nb.cells[2].source
    # what `embedlab teach` primes before serving: the results explorer's trap run, one model here
    steps = plan(notebooks=paths)
    assert [(s.need, s.model) for s in steps] == [("trap_report", "bm25")]


def test_teach_without_voila_names_the_extra(monkeypatch) -> None:
    from embedlab.cli import app

    monkeypatch.setitem(sys.modules, "voila.app", None)  # `from voila.app import Voila` raises ImportError
    result = CliRunner().invoke(app, ["teach", "-m", "bm25", "--port", str(_free_port())])
    assert result.exit_code == 2
    assert "pip install 'embedlab[teach]'" in result.output


def test_teach_refuses_a_work_folder_that_holds_other_files(tmp_path: Path) -> None:
    from embedlab.cli import app

    (tmp_path / "grades.ipynb").write_text("{}")
    result = CliRunner().invoke(app, ["teach", "--work-dir", str(tmp_path), "--port", str(_free_port())])
    assert result.exit_code == 2 and "grades.ipynb" in result.output and "empty folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.ipynb"]  # nothing written, nothing primed


def test_teach_rejects_an_unknown_language() -> None:
    from embedlab.cli import app

    result = CliRunner().invoke(app, ["teach", "--lang", "fr"])
    assert result.exit_code == 2 and "zh, en, both" in result.output


def test_the_served_voila_keeps_the_message_filter_and_refuses_a_config_that_runs_cells(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    app = class_voila(root, "127.0.0.1", _free_port(), "t", lambda: None)
    app.init_settings()  # what start() does first: builds the kernel manager, then checks it
    assert set(app.kernel_manager.allowed_message_types) == ALLOWED_MESSAGES
    assert app.voila_configuration.strip_sources and not app.voila_configuration.show_tracebacks

    # a voila.json beside the notebooks asking for progressive rendering (its websocket runs cells)
    (root / "voila.json").write_text(json.dumps({"VoilaConfiguration": {"progressive_rendering": True}}))
    app = class_voila(root, "127.0.0.1", _free_port(), "t", lambda: None)
    with pytest.raises(RuntimeError, match="progressive rendering"):
        app.init_settings()


# ---- e2e tier: a real class server ----


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    work: Path
    log: Path

    def page(self, name: str, token: bool = True) -> str:
        return f"{self.url}/voila/render/{name}.ipynb" + (f"?token={self.token}" if token else "")


@pytest.fixture(scope="module")
@tier("e2e")
def server(tmp_path_factory) -> Iterator[Server]:
    """`embedlab teach -m bm25` on a free port with its own cache and token; stopped with
    SIGTERM (Voilà shuts its kernels down) at the end."""
    base = tmp_path_factory.mktemp("teach")
    port, token = _free_port(), uuid.uuid4().hex
    log_path = base / "teach.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable,
        "-m",
        "embedlab.cli",
        "teach",
        "-m",
        "bm25",
        "--lang",
        "en",
        "--port",
        str(port),
        "--token",
        token,
        "--cache-dir",
        str(base / "cache"),
        "--work-dir",
        str(base / "work"),
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Students open:" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedlab teach did not start (exit {process.poll()}):\n{log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.5)
        banner = log_path.read_text(errors="replace")
        assert f"http://127.0.0.1:{port}/?token={token}" in banner and "Ctrl+C" in banner, banner
        yield Server(f"http://127.0.0.1:{port}", token, base / "work", log_path)
    finally:
        stop_group(process)
        log.close()


def _status(url: str) -> tuple[int, str]:
    """HTTP status of a GET (redirects not followed) and where it redirects to."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=60) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def _visit(server: Server, name: str) -> str:
    """Open an explorer's page as a student does (Voilà runs it in a new kernel); its HTML."""
    with urllib.request.urlopen(server.page(name), timeout=300) as response:
        return response.read().decode("utf-8")


def _kernel_of_a_visit(server: Server) -> str:
    """The id of the kernel Voilà starts for a visit of the trap page."""
    found = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', _visit(server, "trap"))
    assert found, "the served page names no kernel"
    return found.group(1)


def test_both_explorers_render_without_error_or_source(server: Server) -> None:
    for name, marker in (("trap", "embedlab-bar"), ("results", "embedlab-heatmap")):
        page = _visit(server, name)
        assert "There was an error when executing cell" not in page, f"{name}: a cell failed"
        assert "application/vnd.jupyter.widget-view+json" in page and marker in page, f"{name}: no explorer shown"
        assert "from embedlab import" not in page and "cache_dir" not in page, f"{name}: the page shows source"


def _message(msg_type: str, content: dict, session: str) -> dict:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "student",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": "5.3",
    }
    return {
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
        "channel": "shell",
    }


def test_a_kernel_websocket_refuses_code_but_answers_kernel_info(server: Server, tmp_path: Path) -> None:
    import websocket

    kernel = _kernel_of_a_visit(server)
    ws = websocket.create_connection(
        f"ws://{server.url.removeprefix('http://')}/api/kernels/{kernel}/channels?token={server.token}", timeout=60
    )
    target = tmp_path / "student-was-here.txt"
    session = uuid.uuid4().hex
    execute = _message(
        "execute_request",
        {
            "code": f"open({str(target)!r}, 'w').write('ran')",
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        session,
    )
    info = _message("kernel_info_request", {}, session)
    try:
        ws.send(json.dumps(execute))
        ws.send(json.dumps(info))
        replies: list[dict] = []
        deadline = time.monotonic() + 60
        while not any(
            r["parent_header"].get("msg_id") == info["header"]["msg_id"] and r["msg_type"] == "kernel_info_reply"
            for r in replies
        ):
            assert time.monotonic() < deadline, f"no kernel_info_reply within 60 s: {[r['msg_type'] for r in replies]}"
            replies.append(json.loads(ws.recv()))
        # the kernel answers in order: an executed request would have replied by now; wait a little more
        ws.settimeout(3)
        try:
            while True:
                replies.append(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
    finally:
        ws.close()
    to_execute = [r["msg_type"] for r in replies if r["parent_header"].get("msg_id") == execute["header"]["msg_id"]]
    assert to_execute == [], f"the kernel answered the execute request: {to_execute}"
    assert not target.exists(), "the student's code ran on the teacher's machine"
    assert 'Received message of type "execute_request", which is not allowed' in server.log.read_text(errors="replace")


def test_no_token_no_class(server: Server) -> None:
    import websocket

    status, location = _status(server.page("trap", token=False))
    assert status == 302 and "/login" in location, (status, location)
    status, location = _status(f"{server.url}/?token=wrong")
    assert status == 302 and "/login" in location, (status, location)
    kernel = _kernel_of_a_visit(server)
    assert _status(f"{server.url}/api/kernels/{kernel}")[0] == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"ws://{server.url.removeprefix('http://')}/api/kernels/{kernel}/channels", timeout=30
        )
    assert refused.value.status_code == 403


TRAP = ".embedlab-trap"
LABELS_JS = """() => [...document.querySelectorAll('.embedlab-trap .embedlab-bar')].map(b => b.textContent)"""


def test_two_students_each_see_their_own_bars(server: Server, browser, tmp_path: Path) -> None:  # noqa: F811
    students = {
        "A": ("猫为什么喜欢晒太阳", "猫晒太阳是为了保持体温"),
        "B": ("怎样泡一壶好喝的绿茶", "绿茶要用八十度左右的水冲泡"),
    }
    contexts = {name: browser.new_context(viewport={"width": 1300, "height": 1000}) for name in students}
    pages = {name: context.new_page() for name, context in contexts.items()}
    try:
        for page in pages.values():  # both visits at once: two kernels
            page.goto(server.page("trap"), wait_until="commit")
        for page in pages.values():
            page.wait_for_selector(f"{TRAP} .embedlab-bar", timeout=300_000)
        for name, page in pages.items():
            query, candidate = students[name]
            document = page.locator(f"{TRAP} .embedlab-document input").first
            document.fill(candidate)
            document.press("Enter")
            box = page.locator(f"{TRAP} .embedlab-query input").first
            box.fill(query)
            box.press("Enter")
        for name, page in pages.items():
            query, candidate = students[name]
            page.wait_for_function(  # the own candidate, ranked first (★) for the own query (shared words)
                f"(text) => ({LABELS_JS})().some(label => label.startsWith('★') && label.includes(text))",
                arg=candidate,
                timeout=120_000,
            )
            page.screenshot(path=str(tmp_path / f"student-{name}.png"))
        for name, page in pages.items():
            query, candidate = students[name]
            other_query, other_candidate = next(v for k, v in students.items() if k != name)
            labels = page.evaluate(LABELS_JS)
            assert any(candidate in label for label in labels), (name, labels)
            assert not any(other_candidate in label for label in labels), (name, labels)
            assert page.locator(f"{TRAP} .embedlab-query input").first.input_value() == query
            text = page.locator("body").inner_text()
            assert other_query not in text and other_candidate not in text, name
            html = page.content()
            assert "explore.trap" not in html and "from embedlab import" not in html, f"{name}: the page shows source"
            assert "The trap explorer" in text, f"{name}: the intro (markdown, --lang en) is not shown"
            code = page.locator(".jp-CodeCell .jp-InputArea, .jp-InputArea-editor, .cm-editor, .CodeMirror")
            assert code.count() == 0, f"{name}: the page shows a code editor or input area"
    finally:
        for context in contexts.values():
            context.close()
