"""Configuration: loading and validating ``concentrador.toml``, and the
distinguished-name matching that maps a peer certificate to a peer.

The reference of every key is ``docs/configuration.md``.
"""

from concentrador.config.dn import (
    DistinguishedName,
    DNError,
    dn_from_der,
    dn_from_getpeercert,
    dn_from_name,
    dn_matches,
    normalize_dn,
    parse_dn,
)
from concentrador.config.errors import ConfigError
from concentrador.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    build_config,
    load_config,
    resolve_config_path,
)
from concentrador.config.model import (
    AdminConfig,
    ClientConfig,
    Config,
    ConnectionLimits,
    FileTypesConfig,
    LedgerConfig,
    LoadWindow,
    NodeConfig,
    PeerConfig,
    ServerConfig,
    SigningConfig,
    SpoolConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "AdminConfig",
    "ClientConfig",
    "Config",
    "ConfigError",
    "ConnectionLimits",
    "DNError",
    "DistinguishedName",
    "FileTypesConfig",
    "LedgerConfig",
    "LoadWindow",
    "NodeConfig",
    "PeerConfig",
    "ServerConfig",
    "SigningConfig",
    "SpoolConfig",
    "build_config",
    "dn_from_der",
    "dn_from_getpeercert",
    "dn_from_name",
    "dn_matches",
    "load_config",
    "normalize_dn",
    "parse_dn",
    "resolve_config_path",
]
