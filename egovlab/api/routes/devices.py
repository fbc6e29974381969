"""/api/v1/labs/{prefix}/devices: what the NAPALM driver talks to (NAPALM's getter shapes)."""
from typing import Literal

from fastapi import APIRouter

from egovlab import operations
from egovlab.topology import devices as topology_devices

from .. import devices
from ..bodies import PingRequest, TracerouteRequest
from ..context import BEARER, Ctx, Device, Prefix

router = APIRouter(prefix="/api/v1/labs/{prefix}/devices", tags=["devices"], dependencies=BEARER)


@router.get("")
def list_devices(ctx: Ctx, prefix: Prefix) -> list[dict]:
    ctx.lab_or_404(prefix)
    _, _, plan = operations.running_lab(prefix)
    return topology_devices.inventory(plan)


@router.get("/{device}/{getter}",
            summary="One of NAPALM's getters for a device (facts, interfaces, lldp_neighbors, config, ...)")
def device_getter(ctx: Ctx, prefix: Prefix, device: Device, getter: Literal[devices.GETTERS]):  # type: ignore[valid-type]
    return ctx.device_of(prefix, device).get(getter)


@router.post("/{device}/ping", summary="Ping from the device's namespace (NAPALM's result shape)")
def device_ping(ctx: Ctx, prefix: Prefix, device: Device, body: PingRequest) -> dict:
    d = ctx.device_of(prefix, device)
    return d.ping(ctx.address_of(prefix, body.destination), source=body.source, ttl=body.ttl,
                  timeout=body.timeout, size=body.size, count=body.count)


@router.post("/{device}/traceroute", summary="Traceroute from the device's namespace (NAPALM's result shape)")
def device_traceroute(ctx: Ctx, prefix: Prefix, device: Device, body: TracerouteRequest) -> dict:
    d = ctx.device_of(prefix, device)
    return d.traceroute(ctx.address_of(prefix, body.destination), source=body.source, ttl=body.ttl,
                        timeout=body.timeout)
