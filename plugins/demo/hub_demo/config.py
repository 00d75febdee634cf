"""The ``demo:`` section of ``configuration.yaml``.

Every option has a default, so ``demo:`` alone (or no configuration file at all) gives a working home.
Unknown keys are errors: a misspelt ``time_scal`` should not silently run the house at normal speed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    update_interval: float = Field(2.0, gt=0, description="Real seconds between simulation steps.")
    # At most a simulated day per real second: beyond that a step would hold up the event loop.
    time_scale: float = Field(
        1.0, gt=0, le=86_400, description="Simulated seconds per real second; 600 heats a room in seconds."
    )
    outside_mean: float = Field(8.0, ge=-50, le=50, description="Daily mean outside temperature, °C.")
    motion_per_hour: float = Field(12.0, ge=0, description="Average movements in the hallway per hour.")
    seed: int | None = Field(None, description="Seed of the simulation's randomness, for reproducible runs.")
    extra_entities: int = Field(0, ge=0, le=100_000, description="Extra random-walk sensors, for load tests.")
    # SecretStr: the code never shows up in a repr, a log line or a traceback.
    # max_length: a lock command's code is at most 32 characters, so a longer one could never be typed.
    lock_code: SecretStr | None = Field(
        None, min_length=1, max_length=32, description="If set, unlocking the front door needs it."
    )

    @field_validator("lock_code", mode="before")
    @classmethod
    def _code_is_text(cls, value: Any) -> Any:
        # YAML reads 1234 as a number and 0123 as octal 83: insist on quotes rather than guess.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError("write the code in quotes, e.g. lock_code: '0123'")
        return value
