"""The LlamaIndex end-to-end scenarios, collected again to run against the live `target`.

Imported, not copied: pytest resolves their `target` fixture from `tests/live/conftest.py`.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_llama_index_scenarios import *  # noqa: F403

pytestmark = pytest.mark.live
