"""Every table's model, imported once so Alembic sees the whole schema."""

from __future__ import annotations

from xinyi.auth import models as auth_models
from xinyi.citizens import models as citizen_models
from xinyi.db import Base

metadata = Base.metadata
__all__ = ["auth_models", "citizen_models", "metadata"]
