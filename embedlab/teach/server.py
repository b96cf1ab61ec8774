"""`embedlab teach`: the trap explorer and the results explorer served to a class with Voilà.

Each explorer is a notebook that embedlab writes into a work folder (intro text and one
explorer cell, its parameters baked in); Voilà runs it in a kernel of its own for every
page visit and shows only the widgets, never the code. A student's browser may send the
widget messages Voilà allows (comm messages, kernel info), never an execute request: the
server refuses to start unless that filter is on."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedlab.errors import ConfigError
from embedlab.report.lang import check_lang, pick

# what Voilà 0.5's kernel websocket lets through (voila/app.py, `allowed_message_types`);
# everything else, execute_request first, is dropped by jupyter_server before the kernel
ALLOWED_MESSAGES = frozenset(
    {"comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request", "shutdown_request"}
)
INSTALL_HINT = "pip install 'embedlab[teach]'"

INTRO = {  # (Chinese, English) markdown of each served page's intro
    "trap": (
        (
            "# 语义陷阱探索器\n\n选择一个陷阱或输入你自己的查询,修改候选文档,勾选答案:每个模型一组条形图,"
            "★ 标出它排在第一的文档,标题里是差距(答案得分 − 最高的其他文档得分,小于零说明干扰项赢了)。"
        ),
        (
            "# The trap explorer\n\nPick a trap or type your own query, edit the candidate documents and tick the "
            "answer: each model gets a group of bars, ★ marks the document it ranks first, and the title gives the "
            "margin (answer score − best other score; below zero a distractor won)."
        ),
    ),
    "results": (
        "# 结果浏览器\n\n按数据集、模型、类别和结果筛选查询;选中一条查询,看它的热力图行、各模型排在前面的文档和差距。",
        (
            "# The results explorer\n\nFilter the queries by data set, model, category and outcome; select a query "
            "to see its heatmap row, the documents each model ranked highest, and the margin."
        ),
    ),
}
NOTEBOOKS = tuple(INTRO)  # the served pages: <root>/voila/render/<name>.ipynb


@dataclass(frozen=True)
class Lesson:
    """What a class is served: the models (None: the classroom models), the trap data sets
    (None: the bundled ones), the page language and the embedding cache the kernels read."""

    models: tuple[str, ...] | None
    datasets: tuple[str, ...] | None
    lang: str
    cache_dir: Path

    def __post_init__(self) -> None:
        check_lang(self.lang)


def parameters_source(lesson: Lesson, needs: dict) -> str:
    """The parameters cell of a served notebook: the lesson's values as literals, and the
    runs it declares (`needs`, read by `embedlab.report.prime` without executing it)."""
    values = {
        "models": list(lesson.models) if lesson.models else None,
        "datasets": list(lesson.datasets) if lesson.datasets else None,
        "cache_dir": str(lesson.cache_dir),
        "lang": lesson.lang,
        "needs": needs,
    }
    return "\n".join(f"{name} = {value!r}" for name, value in values.items())


def explorer_sources(lesson: Lesson) -> dict[str, tuple[str, str]]:
    """Per served notebook, its parameters cell and its explorer cell (in the lesson's `lang`);
    the trap explorer gets `datasets` only when the lesson names some (its default: the
    bundled trap sets)."""
    trap_args = ["models", *(["datasets=datasets"] if lesson.datasets else []), "cache_dir=cache_dir"]
    return {
        "trap": (
            parameters_source(lesson, {}),
            (f"from embedlab import explore\n\nexplore.trap({', '.join([*trap_args, 'lang=lang'])})"),
        ),
        "results": (
            parameters_source(lesson, {"trap_report": {}}),
            (
                "from embedlab import explore\nfrom embedlab.report import analysis\n\n"
                "run = analysis.trap_report(models, datasets, cache_dir)  # primed into the cache by `embedlab teach`\n"
                "explore.results(run, lang=lang, export_path=None)  # students write no file on this machine"
            ),
        ),
    }


def write_notebooks(lesson: Lesson, folder: Path) -> list[Path]:
    """The served notebooks, written to `folder`: per explorer an intro (markdown, in the
    lesson's language), the parameters cell and the explorer cell. Nothing else is in them."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (parameters, source) in explorer_sources(lesson).items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [
            nbformat.v4.new_markdown_cell(pick(*INTRO[name], lesson.lang, "\n\n")),
            nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(source),
        ]
        path = folder / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


def check_work_dir(root: Path) -> None:
    """ConfigError when `root` holds anything but the served notebooks: Voilà serves every
    notebook of its folder (and reads its voila.json), so the folder must be embedlab's own."""
    served = {f"{name}.ipynb" for name in NOTEBOOKS}
    others = sorted(p.name for p in root.iterdir() if p.name not in served) if root.is_dir() else []
    if others:
        raise ConfigError(
            f"--work-dir {root}: holds {', '.join(others[:5])}{' ...' if len(others) > 5 else ''}; Voilà would serve "
            "that folder to the class: give an empty folder (or none: a temporary one)"
        )


def prime_cache(notebooks: Sequence[Path]) -> None:
    """Compute the runs the served notebooks declare (the results explorer's trap run) into
    the embedding cache once, with a progress bar, so every student kernel only reads it."""
    from embedlab.report.prime import prime

    prime(notebooks=notebooks)


def _voila():
    try:
        from voila.app import Voila
    except ImportError as exc:
        raise ImportError(f"embedlab teach needs Voilà: {INSTALL_HINT}") from exc
    return Voila


def check_port(host: str, port: int) -> None:
    """OSError naming host and port when the port cannot be bound (in use, not allowed)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot serve on {host}:{port}: {exc.strerror}") from None


def class_voila(root: Path, host: str, port: int, token: str, on_ready: Callable[[], None]):
    """A Voilà app serving the notebooks of `root` (tree page, one kernel per page visit):
    no source, no tracebacks, token required, no progressive rendering (its websocket runs
    cells), only `root`'s config read. Its `init_settings` refuses to serve unless the kernel
    websocket filters messages to ALLOWED_MESSAGES. `on_ready` runs once the server listens."""
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
    from tornado.ioloop import IOLoop
    from traitlets.config import Config

    Voila = _voila()

    class ClassVoila(Voila):
        def init_settings(self):
            settings = super().init_settings()
            allowed = set(self.kernel_manager.allowed_message_types)
            if not allowed or not allowed <= ALLOWED_MESSAGES or "execute_request" in allowed:
                shown = sorted(allowed) or "empty: every type allowed"
                raise RuntimeError(
                    f"Voilà's kernel message filter is not the expected one ({shown}); refusing to serve"
                )
            if not issubclass(self.kernel_websocket_connection_class, ZMQChannelsWebsocketConnection):
                raise TypeError(
                    f"kernel websocket connection {self.kernel_websocket_connection_class.__name__} does not apply "
                    "the message filter; refusing to serve a class"
                )
            if self.voila_configuration.progressive_rendering:
                raise RuntimeError("progressive rendering runs cells over a websocket; refusing to serve a class")
            return settings

        def listen(self):
            IOLoop.current().add_callback(on_ready)
            super().listen()

    config = Config(
        {
            "Voila": {
                "ip": host,
                "port": port,
                "port_retries": 0,
                "open_browser": False,
                "token": token,
                "root_dir": str(root),
                "config_file_paths": [str(root)],
            },
            "VoilaConfiguration": {
                "strip_sources": True,
                "show_tracebacks": False,
                "progressive_rendering": False,
                "preheat_kernel": False,
            },
        }
    )
    app = ClassVoila(config=config)
    app.initialize([str(root)])
    return app


def class_url(host: str, port: int, token: str, path: str = "") -> str:
    """An address a student opens, token included (`path` empty: the tree page listing the
    explorers). A server open to every interface is named by this machine's host name."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}/{path}?token={token}"


def banner(lesson: Lesson, host: str, port: int, token: str, root: Path) -> str:
    """What `embedlab teach` prints once the server listens."""
    pages = "\n".join(f"  {name}: {class_url(host, port, token, f'voila/render/{name}.ipynb')}" for name in NOTEBOOKS)
    models = ", ".join(lesson.models) if lesson.models else "the classroom models (bm25, USE, multilingual-e5-small)"
    datasets = ", ".join(lesson.datasets) if lesson.datasets else "the bundled trap sets"
    room = (
        ""
        if host not in ("127.0.0.1", "localhost", "::1")
        else ("\nOnly this machine can reach it; use --host 0.0.0.0 to open it to the room.")
    )
    return (
        "embedlab teach: serving the trap explorer and the results explorer (no code shown, one kernel per page)\n"
        f"  models: {models}\n  data sets: {datasets}\n  language: {lesson.lang}\n"
        f"  cache: {lesson.cache_dir}\n  notebooks: {root}\n"
        f"Students open: {class_url(host, port, token)}\n{pages}{room}\n"
        "Stop with Ctrl+C (the students' kernels are shut down with the server)."
    )


def teach(
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    lang: str = "both",
    cache_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8866,
    token: str | None = None,
    work_dir: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the explorers to a class until interrupted: check Voilà and the port, write the
    notebooks into `work_dir` (default: a temporary folder), prime the cache, then serve.
    `token`: None generates one (printed with the URL)."""
    import shutil
    import tempfile

    from embedlab.run.cache import default_cache_dir

    Voila = _voila()  # noqa: F841 - fail before any work when Voilà is missing
    lesson = Lesson(
        tuple(models) if models else None,
        tuple(datasets) if datasets else None,
        lang,
        Path(cache_dir or default_cache_dir()).resolve(),
    )
    token = token or secrets.token_urlsafe(16)
    check_port(host, port)
    root = Path(work_dir).resolve() if work_dir else Path(tempfile.mkdtemp(prefix="embedlab-teach-"))
    check_work_dir(root)
    notebooks = write_notebooks(lesson, root)
    echo(f"embedlab teach: computing the run of the results explorer into the cache {lesson.cache_dir} ...")
    prime_cache(notebooks)
    app = class_voila(root, host, port, token, lambda: echo(banner(lesson, host, port, token, root)))
    try:
        app.start()
    finally:
        if not work_dir:
            shutil.rmtree(root, ignore_errors=True)
