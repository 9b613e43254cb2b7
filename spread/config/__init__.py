"""spread.conf: the flex-faithful lexer, the lark grammar, typed config, hash and VIDs.

Public entry points: `load_config` (file search + parse + "which daemon am I") and
`parse_config_text` (text only, for tests and tools). Both raise `ConfigError`.
"""

from spread.config.errors import ConfigError
from spread.config.hash import auto_vid, conf_hash, oaat
from spread.config.load import LoadResult, load_config, load_with_log, system_local_addresses
from spread.config.model import (
    DaemonSpec,
    IfType,
    InterfaceSpec,
    IpAddress,
    LoggingSettings,
    PortReuse,
    SegmentSpec,
    SpreadConfig,
    Timeouts,
)
from spread.config.parse import ParseResult, parse_config_text, parse_with_log

__all__ = [
    "ConfigError",
    "DaemonSpec",
    "IfType",
    "InterfaceSpec",
    "IpAddress",
    "LoadResult",
    "LoggingSettings",
    "ParseResult",
    "PortReuse",
    "SegmentSpec",
    "SpreadConfig",
    "Timeouts",
    "auto_vid",
    "conf_hash",
    "load_config",
    "load_with_log",
    "oaat",
    "parse_config_text",
    "parse_with_log",
    "system_local_addresses",
]
