"""Kedro project settings: hooks and the config loader (with an ``env_or`` resolver)."""

import os

from kedro.config import OmegaConfigLoader

from kimi_pipeline.hooks import LineageHook, ParameterValidationHook

HOOKS = (ParameterValidationHook(), LineageHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of base (e.g. test shrinks sizes), not whole sections
    "merge_strategy": {"parameters": "soft"},
    # ${env_or:NAME,default}: environment overrides for URIs and endpoints (not for secrets,
    # which stay in credentials.yml / the environment and never enter parameters)
    "custom_resolvers": {"env_or": lambda name, default=None: os.environ.get(name, default)},
}
