"""Every shell and Python example in README.md and docs/ runs as written.

Each guide's fenced blocks run in order, in one scratch directory of its own, against the
example apps deployed by the `banditrec_service` fixture (a real Ray Serve app over HTTP
and a real Redis):

- `bash` blocks run in `bash -euo pipefail`, with the project's `banditrec` on PATH,
  `BANDITREC_API_KEY` and `.banditrec/admin.key` holding an admin key and `REDIS_URL` the
  service's Redis, as after `banditrec serve`;
- `python` blocks run one after another in one namespace per guide, like a notebook;
- `yaml` blocks with `apps:` are loaded as a service config, `json` blocks are parsed;
- blocks without a language are pictures or sample output and are not run.

The one rewrite: the service's address replaces `localhost:8000` / `127.0.0.1:8000`.
A block that cannot run here says why in a comment on the line before its fence,
`<!-- docs-test: skip: <why, and which test covers it> -->` (other comments, such as
the README's test-command marker, may stand between it and the fence).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>[^>]*?)\s*-->\s*\n(?:<!--[^>]*-->\s*\n)*)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
    re.S | re.M,
)
_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):8000\b")
RUN = {"bash", "sh", "python", "yaml", "json"}


@dataclass(frozen=True)
class Block:
    guide: str
    line: int
    lang: str
    body: str
    skip: str | None

    def __str__(self) -> str:
        return f"{self.guide}:{self.line} ({self.lang})"


def blocks(guide: str) -> list[Block]:
    text = (ROOT / guide).read_text()
    out = []
    for m in _FENCE.finditer(text):
        directive = (m.group("directive") or "").strip()
        skip = directive.removeprefix("skip:").strip() if directive.startswith("skip") else None
        line = text.count("\n", 0, m.start("lang")) + 1
        out.append(Block(guide, line, m.group("lang"), m.group("body"), skip))
    return out


def test_every_guide_has_examples_and_skips_say_why() -> None:
    for guide in GUIDES:
        runnable = [b for b in blocks(guide) if b.lang in RUN]
        assert runnable, f"{guide} has no runnable example"
        for b in runnable:
            assert b.skip is None or len(b.skip) > 20, f"{b}: a skip must say why"


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_runs(guide: str, banditrec_service, tmp_path: Path) -> None:
    address = banditrec_service.url.removeprefix("http://")
    key = banditrec_service.keys["admin"]
    (tmp_path / ".banditrec").mkdir()
    (tmp_path / ".banditrec" / "admin.key").write_text(key + "\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "BANDITREC_API_KEY": key,
        "REDIS_URL": banditrec_service.redis_url,
        "PYTHONPATH": str(ROOT / "src"),
        "MPLBACKEND": "Agg",
    }
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(guide):
        if block.lang not in RUN or block.skip is not None:
            continue
        body = _ADDRESS.sub(address, block.body)
        try:
            _run(block, body, tmp_path, env, namespace)
        except Exception as e:
            raise AssertionError(f"{block} failed:\n{body}\n---\n{e}") from e


def _run(block: Block, body: str, cwd: Path, env: dict, namespace: dict) -> None:
    if block.lang in ("bash", "sh"):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
    elif block.lang == "python":
        with _environment(env), contextlib.chdir(cwd):
            exec(compile(body, str(block), "exec"), namespace)
    elif block.lang == "yaml":
        data = yaml.safe_load(body)
        if isinstance(data, dict) and "apps" in data:
            from banditrec.serving.settings import load_settings

            path = cwd / f"guide-{block.line}.yaml"
            path.write_text(body)
            load_settings(str(path))
    elif block.lang == "json":
        orjson.loads(body)


@contextlib.contextmanager
def _environment(env: dict):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_api_docs_load_without_internet(banditrec_service) -> None:
    """/docs names no other host: Swagger UI's assets come from the service itself."""
    with httpx.Client(base_url=banditrec_service.url, timeout=10) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert assets, page.text
        for url in assets:
            assert not url.startswith(("http:", "https:", "//")), f"/docs loads {url}"
            answer = http.get(url)
            assert answer.status_code == 200, url
            assert len(answer.content) > 1000, url
        assert "swagger-ui-bundle.js" in page.text
