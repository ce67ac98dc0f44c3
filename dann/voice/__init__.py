"""The voice: one request type, best-of-n and the filters every text passes (the blocklist, the
forget list, the copy filter). Plain synchronous code over lstm's sampler, so the trainer's
evaluation, `dann sample` and the running service all speak through the same function."""
