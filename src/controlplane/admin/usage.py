"""The dashboard's usage graphs: the archive a page asks for (`?timeframe=`), read and
shaped for `partials/usage.html`. An unknown timeframe shows the hour, as a link would."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from controlplane.db import Database
from controlplane.usage import service
from controlplane.usage.archives import TIMEFRAMES
from controlplane.usage.view import usage_view


async def usage_for(db: Database, kind: str, subject_id: uuid.UUID, request: Request) -> Any:
    asked = request.query_params.get("timeframe", "hour")
    timeframe = asked if asked in TIMEFRAMES else "hour"
    if kind == "tenant":
        usage = await service.tenant_usage(db, subject_id, timeframe)
    else:
        usage = await service.node_usage(db, subject_id, timeframe)
    return usage_view(kind, usage)
