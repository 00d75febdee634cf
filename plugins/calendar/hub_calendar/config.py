"""The ``calendar:`` section of ``configuration.yaml``.

Every option has a default, so ``calendar:`` alone reads every ``*.ics`` in ``calendars/`` beside
``configuration.yaml``. Unknown keys are errors, with their file and line.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CalendarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[str] | None = Field(
        None, max_length=100,
        description="The .ics files to read, relative to calendars/ (or absolute); default: every calendars/*.ics.",
    )
    check_interval: float = Field(
        60.0, ge=1, le=86_400,
        description="Seconds between looks at a file's modification time; a changed file is read again.",
    )
    # A calendar a person keeps is kilobytes; 1 MB (some 5,000 events) parses in about 0.4 s, on the
    # event loop, which the watchdog reports past a second.
    max_file_bytes: int = Field(1_000_000, ge=1_024, le=10_000_000, description="A larger file is refused.")
    # Bounds one lookup (the current event, the next boundary, a trigger's next occurrence), which
    # walks every occurrence from the first, past ones included, on the event loop: a daily event
    # since 1990 (13,000) takes 0.05 s; 20,000 occurrences of 5,000 weekly events, about a second.
    max_events: int = Field(20_000, ge=10, le=200_000,
                            description="Occurrences walked per lookup (past ones included), at most.")
