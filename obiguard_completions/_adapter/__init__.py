"""The adapter core: what both framework adapters share, framework-free.

Private: the LangChain and LlamaIndex adapters import from here; users import the
adapters, or the transport (`obiguard_completions`).
"""

from .calls import CallPlan, CallRules, merge_stop, plan_call
from .env import API_KEY_ENV, BASE_URL_ENV, PROVIDER_API_KEY_ENV, env_secret
from .fields import (
    BODY_FIELDS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    SECRET_FIELDS,
    TRANSPORT_FIELDS,
    ObiguardFields,
)
from .folding import StreamFold

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "BODY_FIELDS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "PROVIDER_API_KEY_ENV",
    "SECRET_FIELDS",
    "TRANSPORT_FIELDS",
    "CallPlan",
    "CallRules",
    "ObiguardFields",
    "StreamFold",
    "env_secret",
    "merge_stop",
    "plan_call",
]
