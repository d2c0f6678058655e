"""Logs as Azure Personalizer exported them, from a simulated Personalizer loop.

The food-ordering loop of Personalizer's Python quickstart: three users, their context, five
dishes; the logging policy is Personalizer's epsilon-greedy (0.2) around a fixed preference
for the cheapest dish. Lines follow Personalizer's DSJson (`_label_cost`, `_label_probability`,
`_label_Action`, `_labelIndex`, `o`, `Timestamp` with 7 fractional digits, `Version`,
`EventId`, `a`, `c` with `_multi`, `p`, `VWState`); multi-slot lines carry `c._slots` and
`_outcomes`. `python -m tests.personalizer_logs OUT.json.gz` writes the sample the migration
guide (docs/personalizer.md) imports.
"""

from __future__ import annotations

import gzip
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

FOODS: dict[str, dict[str, Any]] = {
    "pasta": {"brand_info": {"company": "pasta_inc"}, "attributes": {"qty": 1, "cuisine": "italian", "price": 12},
              "dietary_attributes": {"vegan": False, "low_carb": False, "low_sodium": True}},
    "bbq": {"brand_info": {"company": "ambisco"}, "attributes": {"qty": 2, "category": "bbq", "price": 20},
            "dietary_attributes": {"vegan": False, "low_carb": True, "low_sodium": False}},
    "bao": {"brand_info": {"company": "bao_and_co"}, "attributes": {"qty": 4, "category": "chinese", "price": 8},
            "dietary_attributes": {"vegan": False, "low_carb": True, "low_sodium": False}},
    "hummus": {"brand_info": {"company": "garbanzo_inc"}, "attributes": {"qty": 1, "category": "breakfast", "price": 5},
               "dietary_attributes": {"vegan": True, "low_carb": False, "low_sodium": False}},
    "veg_platter": {"brand_info": {"company": "farm_fresh"}, "attributes": {"qty": 1, "category": "produce", "price": 7},
                    "dietary_attributes": {"vegan": True, "low_carb": True, "low_sodium": True}},
}  # fmt: skip
USERS: dict[str, dict[str, Any]] = {
    "Bill": {"dietary_preferences": "low_carb", "avg_order_price": "0-20", "browser_type": "edge"},
    "Satya": {"dietary_preferences": "low_sodium", "avg_order_price": "201+", "browser_type": "safari"},
    "Amy": {"dietary_preferences": "vegan", "avg_order_price": "21-50", "browser_type": "edge"},
}  # fmt: skip
EPSILON = 0.2
START = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)


def context(user: str, rng: random.Random) -> list[dict[str, Any]]:
    """A rank request's contextFeatures, as the quickstart builds them."""
    return [
        {"user": USERS[user]},
        {"location": rng.choice(["west", "east", "midwest"])},
        {"time_of_day": rng.choice(["morning", "afternoon", "evening"])},
    ]


def bought(user: str, food: str, ctx: list[dict[str, Any]]) -> float:
    """The quickstart's reward: did the user buy the dish?"""
    diet, price = FOODS[food]["dietary_attributes"], FOODS[food]["attributes"]["price"]
    if user == "Bill":
        midwest = ctx[1]["location"] == "midwest"
        return float(diet["low_carb"] if midwest else price < 10)
    return float(diet["low_sodium"] if user == "Satya" else diet["vegan"])


def _timestamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # Personalizer: 7 fractional digits


def _merged(objects: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for obj in objects:
        out.update(obj)
    return out


def _epsilon_greedy(n: int, best: int) -> list[float]:
    return [EPSILON / n + (1 - EPSILON if i == best else 0.0) for i in range(n)]


def food_log(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` single-slot events of the food loop, as Personalizer's log lines."""
    rng = random.Random(seed)
    names = list(FOODS)
    cheapest = min(range(len(names)), key=lambda i: FOODS[names[i]]["attributes"]["price"])
    lines = []
    for i in range(n):
        user = rng.choice(list(USERS))
        ctx = context(user, rng)
        pmf = _epsilon_greedy(len(names), cheapest)
        chosen = rng.choices(range(len(names)), weights=pmf)[0]
        reward = bought(user, names[chosen], ctx)
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        order = [chosen] + [j for j in range(len(names)) if j != chosen]
        lines.append(
            {
                "_label_cost": -reward,
                "_label_probability": pmf[chosen],
                "_label_Action": chosen + 1,
                "_labelIndex": chosen,
                "o": [{"v": reward, "EventId": event_id, "ActionTaken": False}],
                "Timestamp": _timestamp(START + timedelta(seconds=37 * i)),
                "Version": "1",
                "EventId": event_id,
                "a": [j + 1 for j in order],
                "c": {**_merged(ctx), "_multi": [FOODS[f] for f in names]},
                "p": [pmf[j] for j in order],
                "VWState": {"m": "f0b9e5ad/4c3e2b71"},
            }
        )
    return lines


def layout_log(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` multi-slot events (slots "Main Article", "Side Bar"), as Personalizer logged them."""
    rng = random.Random(seed)
    names = list(FOODS)
    slots = [{"_id": "Main Article", "size": "Large"}, {"_id": "Side Bar", "size": "Small"}]
    lines = []
    for i in range(n):
        user = rng.choice(list(USERS))
        ctx = context(user, rng)
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        available = list(range(len(names)))
        outcomes = []
        for slot in slots:
            pmf = _epsilon_greedy(len(available), 0)
            k = rng.choices(range(len(available)), weights=pmf)[0]
            order = [k] + [j for j in range(len(available)) if j != k]
            reward = bought(user, names[available[k]], ctx) if slot["size"] == "Large" else 0.0
            outcomes.append(
                {
                    "_label_cost": -reward,
                    "_id": slot["_id"],
                    "_a": [available[j] for j in order],
                    "_p": [pmf[j] for j in order],
                    "_o": [{"v": reward, "EventId": event_id, "ActionTaken": False}],
                }
            )
            available.pop(k)
        lines.append(
            {
                "Timestamp": _timestamp(START + timedelta(seconds=41 * i)),
                "Version": "1",
                "EventId": event_id,
                "c": {**_merged(ctx), "_multi": [FOODS[f] for f in names], "_slots": slots},
                "_outcomes": outcomes,
                "VWState": {"m": "f0b9e5ad/4c3e2b71"},
            }
        )
    return lines


def write(lines: list[dict[str, Any]], path: str) -> None:
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    if path.endswith(".gz"):
        with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same bytes every time
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write(food_log(3000), sys.argv[1])
