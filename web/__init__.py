"""The web playground: a page where anyone can try the voice, and its JSON API (see web/app.py)."""
