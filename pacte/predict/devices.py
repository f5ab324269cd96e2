"""Devices that wear out with use: replace or service them before they fail.

From the customer's own device telemetry only (`user.device`): the hours a device has
been on (`hours_on`, as the IoT platform reports it) against the hours its type is
rated for. Devices whose telemetry has no `hours_on` are not judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from pacte.graph.views import DeviceView
from pacte.predict.actions import DEVICE_REPLACE, DEVICE_SERVICE, NextBestAction, Signal

__all__ = ["RATED_HOURS", "REPLACE_AT", "SERVICE_AT", "device_actions", "wear"]

# Hours of use each device type is rated for (the manufacturers' figures, not anyone's
# data); unknown types are not judged.
RATED_HOURS: dict[str, int] = {
    "smart_bulb": 1000, "light_strip": 1200, "speaker": 1200, "camera": 1500,
    "doorbell": 1500, "smart_plug": 1500, "thermostat": 1500, "radiator_valve": 1500,
    "energy_meter": 1500,
}
REPLACE_AT = 0.9  # share of rated life from which a replacement is due
SERVICE_AT = 0.7  # and from which a check-up is
_REPLACE_FOR = timedelta(days=30)
_SERVICE_FOR = timedelta(days=60)


def wear(device_type: str, telemetry: object) -> tuple[int, int] | None:
    """(hours on, rated hours) of a device, or None when it cannot be judged."""
    rated = RATED_HOURS.get(device_type)
    if rated is None or not isinstance(telemetry, str):
        return None
    try:
        hours = json.loads(telemetry).get("hours_on")
    except (ValueError, AttributeError):
        return None
    if not isinstance(hours, int | float) or isinstance(hours, bool) or hours < 0:
        return None
    return int(hours), rated


def device_actions(devices: Iterable[DeviceView], *, now: datetime) -> list[NextBestAction]:
    """A replacement for each device past REPLACE_AT of its life, a check-up past SERVICE_AT."""
    out: list[NextBestAction] = []
    for device in devices:
        kind_of = str(device.fields.get("device_type") or "")
        found = wear(kind_of, device.fields.get("telemetry"))
        if found is None:
            continue
        hours, rated = found
        share = hours / rated
        if share < SERVICE_AT:
            continue
        why = (Signal("user.device", "customer",
                      f"{kind_of} on for {hours} h, {share:.0%} of the {rated} h it is "
                      f"rated for"),)
        if share >= REPLACE_AT:
            out.append(NextBestAction(DEVICE_REPLACE, device.id, round(min(0.95, share - 0.05), 3),
                                      now + _REPLACE_FOR, why))
        else:
            out.append(NextBestAction(DEVICE_SERVICE, device.id, round(share - 0.2, 3),
                                      now + _SERVICE_FOR, why))
    return out
