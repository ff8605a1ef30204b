"""Kedro project settings: hooks (inputs, lineage, run status, MLflow view, node times) and
the config loader (with an ``env_or`` resolver)."""

from kedro.config import OmegaConfigLoader

from kimi_pipeline.hooks import (
    InputCheckHook,
    LineageHook,
    MlflowViewHook,
    NodeTimeHook,
    ParameterValidationHook,
    RunStatusHook,
)
from kimi_pipeline.quiet import register_resolvers

# ${env_or:NAME,default}: environment overrides for URIs and endpoints (not for secrets, which
# stay in credentials.yml / the environment and never enter parameters); registered here the
# current OmegaConf way rather than through CONFIG_LOADER_ARGS["custom_resolvers"], which
# Kedro registers with OmegaConf's deprecated API
register_resolvers()

HOOKS = (ParameterValidationHook(), InputCheckHook(), LineageHook(), RunStatusHook(),
         MlflowViewHook(), NodeTimeHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of base (e.g. test shrinks sizes), not whole sections
    "merge_strategy": {"parameters": "soft"},
}
