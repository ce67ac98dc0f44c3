"""What the state store holds: every piece of mutable state beside the checkpoints, one table each.

The owner's decisions (the forget list, pauses), the bot's presence (scheduled posts, quiet hours,
chime-ins), the counts people leave (reactions, the game's votes) and the poster's record (what it
posted and answered). Times are Unix seconds; Discord ids are 64-bit integers.
"""

from sqlalchemy import (
                 BigInteger,
                 Boolean,
                 Column,
                 Float,
                 Index,
                 Integer,
                 MetaData,
                 String,
                 Table,
                 Text,
                 UniqueConstraint,
)

SCHEMA_VERSION = 5  # raised with every change to these tables (2: `secrets`, 3: `posts`, 4: `learn_off`, 5: `learned`); new tables are created on open

metadata = MetaData()

schema = Table("schema", metadata, Column("version", Integer, nullable=False))

# A counter per table that readers cache (the forget list is checked for every candidate text):
# a writer bumps it in the same transaction, a reader rereads the table only when it moved.
revision = Table("revision", metadata,
                 Column("name", String(32), primary_key=True),
                 Column("number", Integer, nullable=False))

# JSON files of older versions, imported once (store.py): the path, so that no process imports
# a file twice even when it could not rename it afterwards (a read-only volume).
imported = Table("imported", metadata,
                 Column("path", Text, primary_key=True),
                 Column("at", Float, nullable=False))

# Keys the processes share, made once by whichever needs one first (the web page's key that signs
# visitor ids, so that every replica and every restart accepts the same cookies).
secrets = Table("secrets", metadata,
                Column("name", String(32), primary_key=True),
                Column("value", Text, nullable=False))

forget = Table("forget", metadata,
               Column("id", Integer, primary_key=True, autoincrement=True),  # the order given
               Column("key", Text, nullable=False, unique=True),  # the phrase as texts are compared
               Column("phrase", Text, nullable=False),  # as the owner wrote it
               Column("added_at", Float, nullable=False))

pause = Table("pause", metadata,
              Column("scope", String(32), primary_key=True),  # "everywhere" or a server's id
              Column("until", Float, nullable=True))  # None: until someone resumes

autopost = Table("autopost", metadata,
                 Column("channel", BigInteger, primary_key=True),
                 Column("guild", BigInteger, nullable=False),
                 Column("every_s", Float, nullable=False),
                 Column("since", Float, nullable=False),  # the grid's origin
                 Column("last", Float, nullable=True))  # the last run, posted or skipped

quiet = Table("quiet", metadata,
              Column("guild", BigInteger, primary_key=True),
              Column("start_hour", Integer, nullable=False),
              Column("end_hour", Integer, nullable=False),
              Column("tz", String(64), nullable=False))

chime = Table("chime", metadata,
              Column("channel", BigInteger, primary_key=True),
              Column("guild", BigInteger, nullable=False),
              Column("chance", Float, nullable=False))

# Which model version wrote each of dann's Discord messages, so that a reaction added later counts
# for it; `id` orders them for pruning the oldest.
said = Table("said", metadata,
             Column("id", Integer, primary_key=True, autoincrement=True),
             Column("message", BigInteger, nullable=False, unique=True),
             Column("version", Integer, nullable=False))

reactions = Table("reactions", metadata,
                  Column("version", Integer, primary_key=True),
                  Column("up", Integer, nullable=False, default=0),
                  Column("down", Integer, nullable=False, default=0))

game_votes = Table("game_votes", metadata,
                   Column("version", Integer, primary_key=True),
                   Column("votes", Integer, nullable=False, default=0),
                   Column("fooled", Integer, nullable=False, default=0))

poster = Table("poster", metadata,
               Column("destination", String(32), primary_key=True),
               Column("since", Float, nullable=True),  # the posting grid's origin (the first start)
               Column("slot", Integer, nullable=True),  # the last grid point posted or skipped
               Column("cursor", Text, nullable=True))  # the platform's position in its mentions

answered = Table("answered", metadata,
                 Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("destination", String(32), nullable=False),
                 Column("mention", String(64), nullable=False),
                 UniqueConstraint("destination", "mention"))

# The person's own posts as they reach dann after the export (posts.py): from their accounts on
# Mastodon, Bluesky and X, from Discord, and from exports added with `dann import`. One row per
# post, keyed by its platform's id, so a post that arrives twice is stored once; an edit updates
# the row, a deletion empties it and keeps it as a tombstone, so that an older export read again
# cannot bring the post back.
posts = Table("posts", metadata,
              Column("platform", String(16), primary_key=True),  # x, mastodon, bluesky, discord, text
              Column("post_id", String(128), primary_key=True),  # its id there (a .txt line: a hash of it)
              Column("source", String(200), nullable=False),  # how it reached dann: the platform's API, or "export:NAME"
              Column("account", String(200), nullable=True),  # whose post it is, as that platform names them
              Column("kind", String(8), nullable=False),  # post or reply
              Column("text", Text, nullable=False),  # empty once deleted
              Column("created_at", String(40), nullable=True),  # ISO-8601 UTC
              Column("edited_at", String(40), nullable=True),
              Column("stored_at", Float, nullable=False),  # when it first reached dann (Unix seconds)
              Column("deleted", Boolean, nullable=False, default=False),
              Column("fingerprint", String(32), nullable=False),  # the same post through two platforms
              Index("posts_fingerprint", "fingerprint"),
              Index("posts_stored_at", "stored_at"))

# Channels an admin kept out of learning (/dann learn channel off): the bot stores none of the
# person's messages there.
learn_off = Table("learn_off", metadata,
                  Column("channel", BigInteger, primary_key=True),
                  Column("guild", BigInteger, nullable=False))

# The last poll of each of the person's accounts (dann/poster/learn.py): when, how many posts it
# listed, and what it kept out and why (JSON: {"boosts": 3, "private": 1, ...}), for `dann corpus --stats`.
learned = Table("learned", metadata,
                Column("platform", String(16), primary_key=True),
                Column("account", String(200), primary_key=True),
                Column("at", Float, nullable=False),
                Column("listed", Integer, nullable=False),
                Column("kept_out", Text, nullable=False))
