"""`POST /v1/apps/{app}/slates`: a ranked list of k of the N actions offered.

The same path as a single decision: validate with the app's limits → the engine draws
the slate → its records (one per position) to Redis, acknowledged → answer. A repeated
event id is answered with the slate logged the first time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter
from pydantic import ValidationError

from ..decision.record import META_KEY
from ..decision.served import UnknownSlotError
from ..slates.choose import SlateRuleError
from ..slates.decide import slate_from_records
from ..slates.schema import SlateDecision, SlateRequest
from .errors import ApiError, invalid

if TYPE_CHECKING:
    from .service import DecisionService


async def decide_slate(service: DecisionService, app: str, body: bytes) -> SlateDecision:
    from .service import parse_json, with_event_id

    rt = service.runtime(app)
    data = with_event_id(parse_json(body), service.event_ids)
    try:
        request = SlateRequest.model_validate(data, context={"limits": rt.engine.config.limits})
    except ValidationError as exc:
        raise invalid(exc) from None
    try:
        decision, records = rt.engine.decide_slate_logged(request, serialized_features=True)
    except (UnknownSlotError, SlateRuleError) as exc:
        raise ApiError(422, "invalid request", [{"loc": "body", "msg": str(exc)}]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        msg = f"cannot decide: {exc}"
        raise ApiError(422, "invalid request", [{"loc": "body", "msg": msg}]) from None
    stored = await service._log(app, records)
    if stored and stored[0] is not None:
        service.metrics.repeated.labels(app).inc()
        return slate_from_records(stored)
    top = decision.slate[0].probability if decision.slate else 1.0
    service.metrics.observe_decision(app, decision.mode, top)
    _count_exposure(service, app, records)
    return decision


def _count_exposure(service: DecisionService, app: str, records: list) -> None:
    """Positions shown per exposure group (`banditrec_slate_exposure`), for the floors."""
    counter = _EXPOSURE.get(id(service.metrics))
    if counter is None:
        counter = _EXPOSURE[id(service.metrics)] = Counter(
            "banditrec_slate_exposure",
            "Slate positions shown, by exposure group ('' when the item has none).",
            ["app", "group"],
            registry=service.metrics.registry,
        )
    for record in records:
        counter.labels(app, record[META_KEY].get("group") or "").inc()


_EXPOSURE: dict[int, Counter] = {}
