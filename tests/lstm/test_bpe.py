"""The subword vocabulary: reserved ids, exact round trips, and a checkpoint that keeps it."""

import pytest

from lstm.bpe import BpeVocab
from lstm.checkpoint import vocab_from_json
from lstm.vocab import EOS, POST, REPLY, SPECIALS, Vocab

TEXTS = ["good morning friends", "good night friends", "lol same 😂", "morning! café au lait"] * 20


@pytest.fixture(scope="module")
def vocab():
    return BpeVocab.build(TEXTS, size=300)


def test_the_reserved_ids_come_first_and_text_round_trips(vocab):
    tokenizer = vocab.tokenizer
    assert [tokenizer.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    for text in ["good morning friends", "an emoji it never saw 🦑 and ünïcödé", "  spaces\nand lines  "]:
        assert vocab.decode(vocab.encode(text)) == text
    assert len(vocab.encode("good morning friends")) < len("good morning friends") / 2  # merges learned
    assert 1.5 < vocab.chars_per_token < 10


def test_records_and_decoding_stop_at_eos(vocab):
    ids = vocab.encode_record("reply", "lol same")
    assert ids[0] == REPLY and ids[-1] == EOS and vocab.encode_record("post", "x")[0] == POST
    assert vocab.decode([*vocab.encode("good"), EOS, *vocab.encode("bad")]) == "good"
    # A continuation decodes alone as it does after its prompt: the space is the next token's.
    prompt, rest = vocab.encode("good"), vocab.encode(" morning")
    assert vocab.decode(prompt) + vocab.decode(rest) == "good morning"
    assert vocab.decode(vocab.encode("good morning")) == vocab.decode(prompt) + vocab.decode(rest)


def test_a_checkpoint_tells_the_two_vocabularies_apart(vocab):
    again = vocab_from_json(vocab.to_json())
    assert isinstance(again, BpeVocab) and again == vocab and len(again) == len(vocab)
    chars = Vocab.build(TEXTS)
    assert vocab_from_json(chars.to_json()) == chars
    assert vocab.steps_for(280) > 280 / vocab.chars_per_token and chars.steps_for(280) == 280


def test_decomposed_accents_are_one_text(vocab):
    assert vocab.encode("cafe\u0301") == vocab.encode("caf\u00e9")
