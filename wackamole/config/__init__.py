"""wackamole.conf: the parser and the typed configuration it produces."""

from wackamole.config.model import (
    Action,
    Hook,
    IpSpec,
    Notification,
    Vif,
    WackamoleConfig,
)
from wackamole.config.parse import (
    ConfigError,
    Problem,
    load_config,
    parse_config_text,
    prefer_expansion,
)

__all__ = [
    "Action",
    "ConfigError",
    "Hook",
    "IpSpec",
    "Notification",
    "Problem",
    "Vif",
    "WackamoleConfig",
    "load_config",
    "parse_config_text",
    "prefer_expansion",
]
