"""The running service that the bot, the web page and the poster share: the generation queue
over the voice (dann/voice/), the status summary, and the game's tallies.

It imports neither discord nor fastapi, so each front end loads only its own framework."""
