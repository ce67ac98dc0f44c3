"""Runtime settings and secrets, in one place: environment variables prefixed DANN_, or a .env file.

Hyperparameters are not here: they live in frozen dataclasses saved inside each checkpoint.
"""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DANN_", env_file=".env", extra="ignore")

    # Where the trainer publishes models and where `dann sample`, the bot and the web page read them.
    checkpoint_dir: Path = Path("checkpoints")
    # Default sampling temperature: 0.4 read best. 0 is greedy (it loops), above ~1 is noise.
    temperature: float = Field(0.4, ge=0.0, le=5.0)
    # Longest generated post, in characters.
    max_chars: int = Field(280, ge=1, le=4000)
    # Training time budget for `dann train` when neither --minutes nor --steps is given.
    train_minutes: float = Field(5.0, gt=0)
    # The Discord bot token. Never logged, never printed.
    discord_token: SecretStr | None = None
