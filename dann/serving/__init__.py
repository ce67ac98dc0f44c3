"""The serving layer that the bot, the web page, `dann sample` and `dann eval` share: the one
request type, best-of-n and its filters, the generation service and the status summary.

It imports neither discord nor fastapi, so each front end loads only its own framework."""
