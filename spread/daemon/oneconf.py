"""A one-daemon SpreadConfig built in code, for tests, the benchmark and `python -m spread.daemon`.

Only what a single daemon on one address needs; the real parser lives in spread.config.
"""

from __future__ import annotations

import socket

from spread.config.hash import auto_vid
from spread.config.model import (
    DaemonSpec,
    IfType,
    InterfaceSpec,
    IpAddress,
    SegmentSpec,
    SpreadConfig,
)


def single_daemon_config(
    name: str, ip: str = "127.0.0.1", port: int = 4803, **settings: object
) -> SpreadConfig:
    """`Spread_Segment <bcast>:<port> { <name> <ip> }` with defaults, plus any field overrides."""
    addr = IpAddress(4, socket.inet_pton(socket.AF_INET, ip))
    bcast = IpAddress(4, addr.packed[:3] + b"\xff")
    me = DaemonSpec(
        name=name,
        vid=auto_vid(name),
        address=addr,
        port=port,
        segment=0,
        index_in_segment=0,
        interfaces=(InterfaceSpec(IfType.ALL | IfType.ANY, addr),),
    )
    seg = SegmentSpec(port=port, addresses=(bcast,), daemons=(me,))
    return SpreadConfig(
        segments=(seg,),
        daemons=(me,),
        my=me,
        conf_hash=0,
        hash_text="",
        filename="<built>",
        active_ip_version=4,
        **settings,  # type: ignore[arg-type]
    )
