"""In-process decision core: decide latency against VW's own floor, learn throughput, LinUCB.

    python bench/bench_core.py [--n 5000]

Figures (issue: decision core): VW epsilon-greedy decide for 10 actions × 20 features
p50 ≤ 150 µs, reported with its ratio to the raw VW floor (parse a prepared JSON string +
predict) measured in the same run; learn ≥ 8,000 events/s; LinUCB decide ≤ 100 µs at d = 50.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as the figures are stated
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import vowpal_wabbit_next as vw

sys.path.insert(0, str(Path(__file__).parent))
from _timing import per_call, us
from banditrec import AppConfig, DecisionEngine, DecisionRequest
from banditrec.decision.record import set_reward
from banditrec.decision.sampling import event_seed


def make_request(rng: np.random.Generator, i: int, n_actions: int = 10) -> DecisionRequest:
    """10 context features shared by all actions + 10 features of each action = 20 per action."""
    context = {"user": {f"u{j}": float(rng.random()) for j in range(9)} | {"country": "IN"}}
    actions = [
        {
            "id": f"article-{a}",
            "features": {"topic": {f"t{j}": float(rng.random()) for j in range(10)}},
        }
        for a in range(n_actions)
    ]
    return DecisionRequest(event_id=f"ev-{i}", context=context, actions=actions)


def vw_figures(title: str, policy: dict, requests: list[DecisionRequest], n: int) -> list[dict]:
    """Decide against the raw VW floor (the same VW arguments, crosses included), and learn
    against raw VW parsing the DSJson lines; returns the joined records (for LinUCB below)."""
    rng = np.random.default_rng(1)
    app = AppConfig(name="bench", policy=policy)
    records = []
    warm = DecisionEngine(app)  # decides and learns once over the requests: crosses in place
    for r in requests:
        _, (rec,) = warm.decide_logged(r)
        records.append(set_reward(rec, float(rng.random() < 0.3)))
    engine = DecisionEngine(app)
    for rec in records[:50]:  # the default adds its crosses as it learns: learn a few first
        engine.learn(rec)
    vw_args = engine.policies[None].vw_args()
    raw = vw.Workspace(vw_args, model_data=engine.policies[None].to_bytes())
    parser = vw.JsonFormatParser(raw)
    prepared = [engine.features(r)[None].vw_json() for r in requests]

    it = iter(range(10**9))
    floor = per_call(lambda: raw.predict_one(parser.parse_json(prepared[next(it) % n])), n)
    it = iter(range(10**9))
    decide = per_call(lambda: engine.decide(requests[next(it) % n]), n)
    it = iter(range(10**9))
    decide_logged = per_call(lambda: engine.decide_logged(requests[next(it) % n]), n)

    print(f"{title}: {' '.join(a for a in vw_args if a != '--quiet')}")
    print(
        f"  raw VW floor (parse prepared JSON + predict) p50 {us(floor):7.1f} us  p99 {us(floor, 99):7.1f} us"
    )
    print(
        f"  engine.decide                                 p50 {us(decide):7.1f} us  p99 {us(decide, 99):7.1f} us  ratio {us(decide) / us(floor):.2f}x floor"
    )
    print(f"  engine.decide_logged (+ DSJson record)        p50 {us(decide_logged):7.1f} us")

    learner = DecisionEngine(app)
    t = time.perf_counter()
    for rec in records:
        learner.learn(rec)
    learn_rate = len(records) / (time.perf_counter() - t)
    raw_learner = vw.Workspace(vw_args)
    dsjson = vw.DSJsonFormatParser(raw_learner)
    texts = [orjson.dumps(rec).decode() for rec in records]
    t = time.perf_counter()
    for text in texts:
        raw_learner.learn_one(dsjson.parse_json(text))
    raw_rate = len(texts) / (time.perf_counter() - t)
    print(
        f"  engine.learn (joined record dict)   {learn_rate:9.0f} events/s  ({learn_rate / raw_rate:.2f}x raw VW DSJson parse+learn at {raw_rate:.0f}/s)"
    )
    return records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    requests = [make_request(rng, i) for i in range(args.n)]

    # --- VW decide vs its raw floor, same run ---------------------------------------
    # The shape the decision-core figures were first stated for (no crosses), then the
    # default app, which crosses user × topic (10 × 10 more features per action).
    shape = {
        "kind": "vw",
        "explorer": {"type": "epsilon", "epsilon": 0.1},
        "action_id_feature": False,
        "interactions": [],
    }
    records = vw_figures("VW epsilon-greedy, 10 actions x 20 features", shape, requests, args.n)
    vw_figures("default app {kind: vw}, same requests", {"kind": "vw"}, requests, args.n)
    dumped = [r.model_dump() for r in requests[:1000]]
    it = iter(range(10**9))
    validate = per_call(lambda: DecisionRequest.model_validate(dumped[next(it) % 1000]), 2000)
    print(f"DecisionRequest validation (pydantic, HTTP)     p50 {us(validate):7.1f} us")

    # --- explanations: explain=false against the path without the hook; explain=true --
    explain_rounds(DecisionEngine(AppConfig(name="bench", policy=shape)), requests, args.n)

    # --- LinUCB at d = 50 -----------------------------------------------------------
    lin = DecisionEngine(AppConfig(name="lin", policy={"kind": "linucb", "dim": 50}))
    for rec in records[:2000]:
        lin.learn(rec)
    it = iter(range(10**9))
    lin_decide = per_call(lambda: lin.decide(requests[next(it) % args.n]), args.n)
    feats = [lin.features(r)[None] for r in requests[:1000]]
    for x in feats:
        x.hashed(50)
    it = iter(range(10**9))
    lin_pmf = per_call(lambda: lin.policy.pmf(feats[next(it) % 1000], event_seed(0, "x")), 3000)
    print("LinUCB, d = 50, 10 actions")
    print(
        f"  engine.decide (incl. feature hashing)         p50 {us(lin_decide):7.1f} us  p99 {us(lin_decide, 99):7.1f} us"
    )
    print(f"  policy.pmf (features hashed)                  p50 {us(lin_pmf):7.1f} us")


def explain_rounds(engine: DecisionEngine, requests: list[DecisionRequest], n: int) -> None:
    """Alternating rounds, same process: `decide` (explain false; the app's default privacy
    settings, which check for contact details), the same under `contact_values: allow`, the
    same steps without the explain/opt-out/privacy checks (choose + build the decision, what
    `decide` was before them), and `decide` with explain true. The VW model is trained first
    so its weights are not zero."""
    from banditrec.decision.served import build_decision

    for r in requests[:2000]:
        _, (rec,) = engine.decide_logged(r)
        engine.learn(set_reward(rec, float(hash(rec["EventId"]) % 3 == 0)))
    explained = [r.model_copy(update={"explain": True}) for r in requests]

    def bare(r: DecisionRequest) -> object:
        served, choices = engine.choose(r)
        return build_decision(r.event_id, served, choices)

    # The same model under contact_values: allow (no contact-detail check): isolates the
    # explain/opt-out checks from the privacy default's check.
    allow = engine.config.model_copy(
        update={"privacy": engine.config.privacy.model_copy(update={"contact_values": "allow"})}
    )
    allowing = DecisionEngine(allow, engine.policies)
    kinds = {
        "decide, explain false": lambda i: engine.decide(requests[i % n]),
        "  same, contact_values allow": lambda i: allowing.decide(requests[i % n]),
        "choose + decision (no hook)": lambda i: bare(requests[i % n]),
        "decide, explain true": lambda i: engine.decide(explained[i % n]),
    }
    samples: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    for round_ in range(10):
        for name, fn in kinds.items():
            it = iter(range(round_ * n, 10**9))
            samples[name].append(per_call(lambda fn=fn, it=it: fn(next(it)), n // 5, warmup=50))
    p50 = {k: float(np.median([us(s) for s in v])) for k, v in samples.items()}
    base = p50["choose + decision (no hook)"]
    print("Explanations (VW epsilon-greedy, 10 actions x 20 features; 10 alternating rounds)")
    for name, value in p50.items():
        print(f"  {name:<30} median of round p50s {value:7.1f} us  ({value / base:.3f}x no hook)")


if __name__ == "__main__":
    main()
