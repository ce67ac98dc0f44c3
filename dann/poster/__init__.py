"""`dann poster`: dann as an "ebooks" account on X, Mastodon and Bluesky (poster.py)."""
