from lstm.vocab import EOS, POST, REPLY, UNK, UNK_CHAR, Vocab


def test_round_trip_with_emoji_accents_and_cjk():
    text = "héllo 😀 世界 naïve"
    vocab = Vocab.build([text])
    ids = vocab.encode(text)
    assert len(ids) == len(text)  # one id per code point: the emoji and CJK are one character each
    assert vocab.decode(ids) == text


def test_decomposed_accent_is_one_character():
    vocab = Vocab.build(["é"])
    assert vocab.encode("e\u0301") == vocab.encode("\u00e9")  # NFC: both are one known character
    assert UNK not in vocab.encode("e\u0301")


def test_unknown_and_rare_characters():
    vocab = Vocab.build(["aaaa bbbb c"], min_count=2)
    assert "c" not in vocab.chars
    assert vocab.encode("abc")[-1] == UNK
    assert vocab.decode(vocab.encode("abc🙂")) == f"ab{UNK_CHAR}{UNK_CHAR}"
    dropping = Vocab.build(["aaaa bbbb c"], min_count=2, rare="drop")
    assert dropping.decode(dropping.encode("abc🙂")) == "ab"


def test_records_are_marked_and_decoding_stops_at_end_of_post():
    vocab = Vocab.build(["hi yo"])
    post, reply = vocab.encode_record("post", "hi"), vocab.encode_record("reply", "yo")
    assert post[0] == POST and reply[0] == REPLY and post[-1] == EOS
    assert vocab.decode(post + reply) == "hi"


def test_json_round_trip():
    vocab = Vocab.build(["héllo 😀 世界"], rare="drop")
    assert Vocab.from_json(vocab.to_json()) == vocab
    assert len(Vocab.from_json(vocab.to_json())) == len(vocab)
