"""Azure Personalizer's own Python SDKs, unchanged but for endpoint and key, against banditrec
over real HTTP: rank, reward, activate, multi-slot, configuration; the decisions they cause are
joined and learned like native ones. Also the request samples of Personalizer's REST reference
and its quickstart."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.cognitiveservices.personalizer import PersonalizerClient as LegacyClient
from azure.cognitiveservices.personalizer.models import RankableAction, RankRequest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from msrest.authentication import CognitiveServicesCredentials

from banditrec.config import AppConfig, RewardConfig, SlotConfig
from banditrec.decision.record import META_KEY
from banditrec.eventlog import EventLog, connect
from banditrec.personalizer import DEFAULT_LEARNING_SETTINGS, parse_learning_settings
from tests.plugins.ray_cluster import TEST_WAIT_S, ServiceUnderTest
from tests.polling import wait_for

SINGLE, MULTI = "pz-food", "pz-layout"


@dataclass
class Resource:
    """A Personalizer resource as banditrec serves it: an endpoint and a key."""

    svc: ServiceUnderTest
    log: EventLog

    @property
    def key(self) -> str:
        return self.svc.keys["admin"]

    def endpoint(self, app: str) -> str:
        return f"{self.svc.url}/apps/{app}"

    def joined(self, app: str) -> dict[str, dict[str | None, float]]:
        """event id → {slot: reward} of the app's joined stream."""
        out: dict[str, dict[str | None, float]] = {}
        for _, record in self.log.joined.read(app, count=100_000):
            meta = record[META_KEY]
            out.setdefault(meta["event_id"], {})[meta["slot"]] = meta["reward"]
        return out

    def counters(self, app: str) -> dict[str, int]:
        return self.log.joined.stats(app)


@pytest.fixture(scope="module")
def resource(banditrec_service: ServiceUnderTest) -> Iterator[Resource]:
    """Two Personalizer-style apps added to the running service (it picks new apps up live)."""
    log = EventLog(connect(banditrec_service.redis_url))
    policy = parse_learning_settings(DEFAULT_LEARNING_SETTINGS).model_copy(
        update={"action_id_feature": False}
    )
    reward = RewardConfig(wait_seconds=TEST_WAIT_S)
    log.configs.put(AppConfig(name=SINGLE, policy=policy, reward=reward))
    slots = [SlotConfig(name=n, policy=policy) for n in ("Main_Article", "Side_Bar")]
    log.configs.put(AppConfig(name=MULTI, slots=slots, reward=reward))
    res = Resource(banditrec_service, log)
    with httpx.Client(base_url=banditrec_service.url, headers=banditrec_service.headers()) as http:
        wait_for(
            lambda: all(http.get(f"/v1/apps/{a}").status_code == 200 for a in (SINGLE, MULTI)),
            60,
            "the replicas to load the new apps",
        )
    yield res
    log.close()


# --- the quickstart of the original SDK (azure-cognitiveservices-personalizer) ------------

FOODS = {
    "pasta": {"brand_info": {"company": "pasta_inc"}, "attributes": {"qty": 1, "price": 12},
              "dietary_attributes": {"vegan": False, "low_carb": False, "low_sodium": True}},
    "bbq": {"brand_info": {"company": "ambisco"}, "attributes": {"qty": 2, "price": 20},
            "dietary_attributes": {"vegan": False, "low_carb": True, "low_sodium": False}},
    "bao": {"brand_info": {"company": "bao_and_co"}, "attributes": {"qty": 4, "price": 8},
            "dietary_attributes": {"vegan": False, "low_carb": True, "low_sodium": False}},
    "hummus": {"brand_info": {"company": "garbanzo_inc"}, "attributes": {"qty": 1, "price": 5},
               "dietary_attributes": {"vegan": True, "low_carb": False, "low_sodium": False}},
}  # fmt: skip
USERS = {
    "Bill": {"dietary_preferences": "low_carb", "avg_order_price": "0-20", "browser_type": "edge"},
    "Satya": {"dietary_preferences": "low_sodium", "avg_order_price": "201+"},
    "Amy": {"dietary_preferences": ["vegan", "vegetarian"], "avg_order_price": "21-50"},
}


def _context(user: str, rng: random.Random) -> list[dict]:
    return [
        USERS[user],
        {"location": rng.choice(["west", "east", "midwest"])},
        {"time_of_day": rng.choice(["morning", "afternoon", "evening"])},
    ]


def _bought(user: str, food: str) -> float:
    diet = FOODS[food]["dietary_attributes"]
    return float(diet["low_carb"] if user == "Bill" else diet["low_sodium"] or diet["vegan"])


def test_legacy_sdk_quickstart_decisions_are_joined_and_learned(resource: Resource) -> None:
    client = LegacyClient(resource.endpoint(SINGLE), CognitiveServicesCredentials(resource.key))
    actions = [RankableAction(id=i, features=[f]) for i, f in FOODS.items()]
    rng = random.Random(0)
    before = resource.counters(SINGLE).get("learned", 0)
    sent: dict[str, float] = {}
    for _ in range(40):
        user = rng.choice(list(USERS))
        response = client.rank(RankRequest(actions=actions, context_features=_context(user, rng)))
        assert {r.id for r in response.ranking} == set(FOODS)
        assert response.ranking[0].id == response.reward_action_id
        assert sum(r.probability for r in response.ranking) == pytest.approx(1.0)
        value = _bought(user, response.reward_action_id)
        client.events.reward(event_id=response.event_id, value=value)
        sent[response.event_id] = value

    # excludedActions, a caller's event id, deferred activation
    deferred = client.rank(
        RankRequest(
            actions=actions,
            context_features=_context("Amy", rng),
            excluded_actions=["bbq"],
            event_id="legacy-deferred-1",
            defer_activation=True,
        )
    )
    assert deferred.event_id == "legacy-deferred-1"
    assert deferred.reward_action_id != "bbq"
    assert [r.probability for r in deferred.ranking if r.id == "bbq"] == [0.0]
    client.events.activate(event_id="legacy-deferred-1")
    client.events.reward(event_id="legacy-deferred-1", value=1.0)
    sent["legacy-deferred-1"] = 1.0

    wait_for(lambda: sent.keys() <= resource.joined(SINGLE).keys(), 30, "the joins")
    joined = resource.joined(SINGLE)
    assert {e: joined[e][None] for e in sent} == sent
    wait_for(
        lambda: resource.counters(SINGLE).get("learned", 0) - before >= len(sent), 30, "learning"
    )
    assert resource.log.models.version(SINGLE) > 0


def test_legacy_sdk_wrong_key_is_refused_in_personalizers_error_shape(resource: Resource) -> None:
    client = LegacyClient(resource.endpoint(SINGLE), CognitiveServicesCredentials("brk_x_y"))
    with pytest.raises(Exception) as info:
        client.rank(RankRequest(actions=[RankableAction(id="a", features=[{"x": 1}])]))
    assert info.value.response.status_code == 401  # type: ignore[attr-defined]
    assert info.value.response.json()["error"]["code"] == "Unauthorized"  # type: ignore[attr-defined]


# --- the current SDK (azure-ai-personalizer): single and multi-slot, configuration -------

ARTICLES = [
    {"id": "NewsArticle", "features": [{"type": "News"}]},
    {"id": "SportsArticle", "features": [{"type": "Sports"}]},
    {"id": "EntertainmentArticle", "features": [{"type": "Entertainment"}]},
]
SLOTS = [
    {"id": "Main Article", "features": [{"size": "Large", "position": "Top Middle"}],
     "excludedActions": ["SportsArticle"], "baselineAction": "EntertainmentArticle"},
    {"id": "Side Bar", "features": [{"size": "Small"}], "baselineAction": "NewsArticle"},
]  # fmt: skip


def _device(i: int) -> list[dict]:
    return [{"user": {"profileType": "AnonymousUser"}}, {"device": {"mobile": i % 2 == 0}}]


def test_sdk_single_and_multi_slot_calls_are_joined_and_learned(resource: Resource) -> None:
    credential = AzureKeyCredential(resource.key)
    single = PersonalizerClient(resource.endpoint(SINGLE), credential)
    ranked = single.rank(
        {"actions": ARTICLES, "contextFeatures": _device(0), "deferActivation": True}
    )
    single.activate(ranked["eventId"])
    single.reward(ranked["eventId"], {"value": 0.5})

    multi = PersonalizerClient(resource.endpoint(MULTI), credential)
    before = resource.counters(MULTI).get("learned", 0)
    sent: dict[str, dict[str | None, float]] = {}
    for i in range(20):
        body = {"contextFeatures": _device(i), "actions": ARTICLES, "slots": SLOTS}
        if i == 0:
            body |= {"eventId": "multi-deferred", "deferActivation": True}
        r = multi.rank_multi_slot(body)
        chosen = {s["id"]: s["rewardActionId"] for s in r["slots"]}
        assert set(chosen) == {"Main Article", "Side Bar"}
        assert chosen["Main Article"] != "SportsArticle"
        assert chosen["Main Article"] != chosen["Side Bar"]  # slots take distinct actions
        if i == 0:
            multi.activate_multi_slot(r["eventId"])
        main = float(chosen["Main Article"] == "EntertainmentArticle")
        multi.reward_multi_slot(
            r["eventId"],
            {
                "reward": [
                    {"slotId": "Main Article", "value": main},
                    {"slotId": "Side Bar", "value": 0.25},
                ]
            },
        )
        sent[r["eventId"]] = {"Main_Article": main, "Side_Bar": 0.25}

    wait_for(lambda: sent.keys() <= resource.joined(MULTI).keys(), 30, "the multi-slot joins")
    joined = resource.joined(MULTI)
    assert {e: joined[e] for e in sent} == sent
    wait_for(
        lambda: resource.counters(MULTI).get("learned", 0) - before >= 2 * len(sent), 30, "learning"
    )
    wait_for(lambda: ranked["eventId"] in resource.joined(SINGLE), 30, "the single-slot join")
    assert resource.joined(SINGLE)[ranked["eventId"]] == {None: 0.5}


def test_sdk_configuration_maps_onto_the_app_config(resource: Resource) -> None:
    admin = PersonalizerAdministrationClient(
        resource.endpoint(SINGLE), AzureKeyCredential(resource.key)
    )
    config = admin.get_service_configuration()
    assert config["explorationPercentage"] == 0.2 and config["learningMode"] == "Online"
    config |= {"explorationPercentage": 0.3, "defaultReward": -0.5, "rewardAggregation": "sum"}
    updated = admin.update_service_configuration(config)
    assert updated["explorationPercentage"] == 0.3 and updated["rewardAggregation"] == "sum"
    app = resource.log.configs.get(SINGLE)
    assert app is not None and app.policy.explorer.epsilon == 0.3  # type: ignore[union-attr]
    assert (app.reward.default, app.reward.aggregation) == (-0.5, "sum")

    settings = (
        "--cb_explore_adf --epsilon 0.1 --dsjson --cb_type ips -l 0.5 --l1 1E-07 --power_t 0.5"
    )
    policy = admin.update_policy({"name": "mine", "arguments": settings})
    assert policy["arguments"] == (
        "--cb_explore_adf --epsilon 0.1 --cb_type ips -l 0.5 --power_t 0.5 --l1 1E-07"
    )
    assert admin.get_policy()["arguments"] == policy["arguments"]
    app = resource.log.configs.get(SINGLE)
    assert app is not None and app.policy.cb_type == "ips"  # type: ignore[union-attr]
    assert admin.reset_policy()["arguments"].startswith("--cb_explore_adf --epsilon 0.2")
    with pytest.raises(HttpResponseError) as info:
        admin.update_policy({"name": "bad", "arguments": "--cb_explore_adf --epsilon 2"})
    assert info.value.status_code == 400
    with pytest.raises(HttpResponseError) as info:  # a key without the admin scope
        PersonalizerAdministrationClient(
            resource.endpoint(SINGLE), AzureKeyCredential(resource.svc.keys["decide"])
        ).get_policy()
    assert info.value.status_code == 403 and info.value.error.code == "Forbidden"
    with pytest.raises(ClientAuthenticationError):
        PersonalizerClient(resource.endpoint(SINGLE), AzureKeyCredential("brk_0_0")).rank(
            {"actions": ARTICLES}
        )
    admin.update_service_configuration(
        {**config, "defaultReward": 0.0, "rewardAggregation": "earliest"}
    )


# --- Personalizer's REST reference samples, as raw HTTP ----------------------------------

RANK_SAMPLE = {
    "contextFeatures": [{"timeOfDay": "Morning"}],
    "actions": ARTICLES,
    "excludedActions": ["SportsArticle"],
    "eventId": "75269AD0-BFEE-4598-8196-C57383D38E10",
    "deferActivation": False,
}
MULTI_SLOT_SAMPLE = {
    "contextFeatures": [
        {"user": {"profileType": "AnonymousUser", "latLong": "47.6,-122.1"}},
        {"environment": {"dayOfMonth": "28", "monthOfYear": "8", "weather": "Sunny"}},
        {"device": {"mobile": True, "windows": True}},
        {"recentActivity": {"itemsInCart": 3}},
    ],
    "actions": ARTICLES,
    "slots": SLOTS,
    "eventId": "75269AD0-BFEE-4598-8196-C57383D38E10",
    "deferActivation": False,
}


def test_rest_reference_samples(resource: Resource) -> None:
    headers = {"Ocp-Apim-Subscription-Key": resource.key}
    with httpx.Client(base_url=resource.svc.url, headers=headers, timeout=10) as http:
        r = http.post(f"/apps/{SINGLE}/personalizer/v1.0/rank", json=RANK_SAMPLE)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["eventId"] == RANK_SAMPLE["eventId"]
        assert body["ranking"][-1] == {"id": "SportsArticle", "probability": 0.0}
        assert body["rewardActionId"] == body["ranking"][0]["id"] != "SportsArticle"
        reward = f"/apps/{SINGLE}/personalizer/v1.0/events/{body['eventId']}/reward"
        assert http.post(reward, json={"value": 1.0}).status_code == 204
        # a retried rank gets the decision logged the first time
        assert http.post(f"/apps/{SINGLE}/personalizer/v1.0/rank", json=RANK_SAMPLE).json() == body

        for version in ("v1.1-preview.1", "v1.1-preview.3"):
            r = http.post(
                f"/apps/{MULTI}/personalizer/{version}/multislot/rank", json=MULTI_SLOT_SAMPLE
            )
            assert r.status_code == 201, r.text
            assert [s["id"] for s in r.json()["slots"]] == ["Main Article", "Side Bar"]

        # errors: Personalizer's shape, a 4xx that says what to fix
        bad = [
            ("v1.0/rank", {"actions": []}, 400, "InvalidRankRequest"),
            (
                "v1.0/rank",
                {"actions": [{"id": "a", "features": [{"x": float("nan")}]}]},
                400,
                "InvalidRankRequest",
            ),
            ("v1.0/rank", {"actions": [{"id": "a", "features": [1]}]}, 400, "InvalidRankRequest"),
            ("v1.0/events/e1/reward", {"value": "high"}, 400, "InvalidRewardRequest"),
            ("v1.0/multislot/rank", MULTI_SLOT_SAMPLE, 404, "ResourceNotFound"),
            ("v9/rank", RANK_SAMPLE, 404, "ResourceNotFound"),
            ("v1.0/events/never-ranked/activate", None, 404, "ResourceNotFound"),
        ]
        for path, payload, status, code in bad:
            app = MULTI if "multislot" in path else SINGLE
            content = b"{" if payload is not None and "nan" in str(payload) else None
            r = http.post(
                f"/apps/{app}/personalizer/{path}",
                json=payload if content is None else None,
                content=content,
            )
            assert r.status_code == status, (path, r.text)
            error = r.json()["error"]
            assert error["code"] == code and error["message"], (path, error)
        r = http.post("/apps/no-such-app/personalizer/v1.0/rank", json=RANK_SAMPLE)
        assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"
