"""Arbitrary unicode against the real VW parser, in a subprocess: a crash fails the test
instead of killing the test run. What reaches VW is what the service builds from a
request that passed validation: the VW JSON it predicts on and the DSJson line it learns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from banditrec import DecisionEngine, DecisionRequest
from banditrec.decision.features import ESCAPE, vw_namespaces
from banditrec.decision.features import vw_line_problem as vw_safe_line
from banditrec.decision.record import set_reward

# Reads "<P|L> <json>" lines: P predicts and learns the VW JSON (last action labelled), L
# learns a labelled DSJson line. Each input runs in a forked child that exits the normal way:
# VW's heap corruption shows only as VW's memory is freed, at the latest at exit. Answers
# "ok", or the child's wait status.
_WORKER = textwrap.dedent(
    """
    import os
    import sys
    import vowpal_wabbit_next as vw

    def run(kind, text):
        w = vw.Workspace(["--cb_explore_adf", "--quiet", "--interactions", "::", "-b", "12"])
        if kind == b"P":
            examples = vw.JsonFormatParser(w).parse_json(text)
            w.predict_one(examples)
            examples[-1].set_label(vw.CBLabel(label=(0.5, 0.5)))
            w.learn_one(examples)
        else:
            w.learn_one(vw.DSJsonFormatParser(w).parse_json(text))

    for line in sys.stdin.buffer:
        pid = os.fork()
        if pid == 0:
            run(line[:1], line[2:].rstrip(b"\\n"))
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write("ok\\n" if status == 0 else f"died {status}\\n")
        sys.stdout.flush()
    """
)


class VWWorker:
    def __init__(self) -> None:
        self.proc = self._start()

    @staticmethod
    def _start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MALLOC_CHECK_": "3"},  # glibc: abort on heap misuse at once
        )

    def survives(self, kind: str, text: bytes) -> bool:
        """Whether VW parsed (and learned) `text`, raised nothing, and exited cleanly."""
        assert b"\n" not in text
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(kind.encode() + b" " + text + b"\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline() == b"ok\n"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def vw_worker() -> Iterator[VWWorker]:
    worker = VWWorker()
    yield worker
    worker.close()


def test_the_worker_catches_the_crash_this_is_about(vw_worker: VWWorker) -> None:
    """A namespace whose first character is not ASCII kills VW; escaped, it parses."""
    raw = '{"用户": {"f": 1}, "_multi": [{"a": {"x": 1}}]}'.encode()
    assert not vw_worker.survives("P", raw)
    escaped = f'{{"{ESCAPE}用户": {{"f": 1}}, "_multi": [{{"a": {{"x": 1}}}}]}}'.encode()
    assert vw_worker.survives("P", escaped)


# Any unicode (surrogates cannot come through JSON), with a bias toward what once broke.
_text = st.text(
    st.characters(exclude_categories=["Cs"]), min_size=0, max_size=12
) | st.sampled_from(
    ["用户", "é", "~用户", "|", ":", " ", "\x00", "a\x00", "\x7f", "\x80", "😀", "_x", "-q", "\n"]
)
_value = st.one_of(
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_namespaces = st.dictionaries(_text, st.dictionaries(_text, _value, max_size=3), max_size=3)
_actions = st.lists(
    st.fixed_dictionaries({"id": _text, "features": _namespaces}), min_size=1, max_size=4
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=_namespaces, actions=_actions)
def test_whatever_passes_validation_vw_parses_and_learns(
    vw_worker: VWWorker, context: dict, actions: list
) -> None:
    try:
        request = DecisionRequest(event_id="e1", context=context, actions=actions)
    except ValidationError:
        return  # refused with a 4xx: never reaches VW
    engine = DecisionEngine.from_config({"name": "alphabet", "policy": {"kind": "uniform"}})
    x = engine.features(request)[None]
    try:
        text = x.vw_json()  # what VW predicts on, and the log record's "c"
    except ValueError as exc:  # refused at decision time (a NUL): a 4xx, never reaches VW
        assert "NUL" in str(exc)
        return
    _, (record,) = engine.decide_logged(request)
    c = record["c"]
    for group in (c, *c["_multi"]):
        assert all(ns == "_multi" or ns[:1].isascii() for ns in group)
    assert vw_worker.survives("P", text), text
    line = orjson_line(set_reward(record, 1.0))
    assert vw_safe_line(line) is None
    assert vw_worker.survives("L", line), line


@settings(max_examples=80, deadline=None)
@given(
    c=st.fixed_dictionaries({"_multi": st.lists(_namespaces, min_size=1, max_size=3)}) | _namespaces
)
def test_the_learner_guard_lets_through_only_what_vw_survives(vw_worker: VWWorker, c: dict) -> None:
    """A logged record from anywhere (an older version, a hand-written file): the learner's
    check before VW. Whatever it passes, VW survives; what it refuses is escapable."""
    c = {k: v for k, v in c.items() if k == "_multi" or k[:1] != "_"}  # '_': never logged
    c["_multi"] = [{k: v for k, v in a.items() if k[:1] != "_"} for a in c.get("_multi", [])]
    c["_multi"] = c["_multi"] or [{"a": {"x": 1}}]
    record = {
        "_label_cost": -1.0,
        "_label_probability": 0.5,
        "_label_Action": 1,
        "_labelIndex": 0,
        "a": list(range(1, len(c["_multi"]) + 1)),
        "p": [1 / len(c["_multi"])] * len(c["_multi"]),
        "c": c,
    }
    line = orjson_line(record)
    reason = vw_safe_line(line)
    if reason is None:
        assert vw_worker.survives("L", line), line
    else:
        fixed = {
            **record,
            "c": {**vw_namespaces(c), "_multi": [vw_namespaces(a) for a in c["_multi"]]},
        }
        left = vw_safe_line(orjson_line(fixed))
        assert left is None or "NUL" in left, left


def orjson_line(record: dict) -> bytes:
    import orjson

    return orjson.dumps(record)
