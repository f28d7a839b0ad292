"""A gate unreachable past the configured bound: an alarm on the console (device table,
site figures), in the devices API, and in ``facegate_web_devices_unreachable{tenant}``."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from edge_agent.wire.status import DeviceStatus
from stream_processor.web.devices import DeviceTable, UnreachableDevices
from tests.support.records import status_payload
from tests.web.conftest import A_SITE, ConsoleRig, auth


def status(tenant: str, site: str, device: str, sent_ms: int) -> DeviceStatus:
    from edge_agent.wire.status import decode_status

    return decode_status(
        status_payload(tenant=tenant, site=site, gate="main", device=device, sent_at_ms=sent_ms)
    )


def test_the_metric_counts_unreachable_devices_per_tenant_at_scrape_time() -> None:
    now_s = 1_800_000_000.0
    table = DeviceTable(offline_after_s=30, unreachable_after_s=600)
    registry = CollectorRegistry()
    clock = [now_s]
    registry.register(UnreachableDevices(table, lambda: clock[0]))
    seen = int(now_s * 1000)
    table.apply(status("acme", "site-1", "cam-1", seen), seen)
    table.apply(status("acme", "site-1", "cam-2", seen), seen + 500_000)
    table.apply(status("bolt", "site-9", "cam-1", seen), seen)

    def value(tenant: str) -> Any:
        return registry.get_sample_value("facegate_web_devices_unreachable", {"tenant": tenant})

    assert value("acme") is None and value("bolt") is None  # none yet
    clock[0] += 601  # cam-1 of both firms silent past the bound; acme's cam-2 not yet
    assert (value("acme"), value("bolt")) == (1.0, 1.0)
    clock[0] += 500
    assert value("acme") == 2.0
    # A status from the gate clears its alarm.
    back = int(clock[0] * 1000)
    table.apply(status("acme", "site-1", "cam-1", back), back)
    assert value("acme") == 1.0
    for metric in registry.collect():  # labels: the tenant only, never a device or site
        for sample in metric.samples:
            assert set(sample.labels) <= {"tenant"}


def test_the_console_shows_an_unreachable_gate(console: ConsoleRig) -> None:
    console.deps.devices.unreachable_after_s = 600
    seen = int(console.clock.now * 1000)
    console.deps.devices.apply(status("acme", A_SITE, "dev-1", seen), seen)
    console.clock.now += 120  # offline, not yet unreachable

    async def go(client: Any) -> None:
        viewer = auth(console.token("acme", "viewer"))
        (dev,) = (await (await client.get("/api/v1/devices", headers=viewer)).json())["devices"]
        assert (dev["online"], dev["unreachable"]) == (False, False)
        console.clock.now += 500
        (dev,) = (await (await client.get("/api/v1/devices", headers=viewer)).json())["devices"]
        assert (dev["online"], dev["unreachable"]) == (False, True)
        overview = await (await client.get("/api/v1/overview", headers=viewer)).json()
        (site,) = [s for s in overview["sites"] if s["site"] == A_SITE]
        assert site["devices_unreachable"] == 1 and site["outbox_alarm"] is True
        page = await (await client.get(f"/console/sites/{A_SITE}?lang=en", headers=viewer)).text()
        assert "Unreachable" in page

    console.run(go)
