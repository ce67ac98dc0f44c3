"""What `dann status`, `/dann status` and `/dann about` say about a model's publish-time numbers."""

from dann.serving.status import about, render_text

PUBLISHED = {"version": 3, "trained_at": "2026-11-20T03:04:00+00:00", "until": "2026-10-02T18:00:00+00:00",
             "eval": {"candidates": {"rejected": 1, "candidates": 800}, "copy_rate": 0.0, "copy_rate_raw": 0.01,
                      "copy_rate_served": 0.0, "auc_dann": 0.947, "auc_markov_nocopy": 0.878,
                      "made_up_words": 0.072, "made_up_words_real": 0.035}}


def test_status_shows_the_fidelity_measured_at_publish():
    text = render_text(PUBLISHED)
    assert "ROC AUC 0.95 (0.5: it cannot); markovify's copy-filtered posts: 0.88" in text
    assert "Made-up words: 7.2% (real posts: 3.5%)" in text
    assert "AUC" not in render_text({**PUBLISHED, "eval": {**PUBLISHED["eval"], "auc_dann": None}})


def test_about_says_bot_whose_voice_up_to_when_and_who_runs_it():
    text = about(PUBLISHED, voice="Sam", owner="<@1>")
    assert text.startswith("dann is a bot that imitates Sam's posts.")
    assert "learned from posts up to 2 October 2026 and was trained on 20 November 2026" in text
    assert "It is run by <@1>" in text
    nameless = about(None, voice="", owner=None)
    assert "one person's posts" in nameless and "not been trained yet" in nameless and "Nobody is set" in nameless


def test_status_shows_the_served_mixture_its_parts_and_convergence():
    text = render_text({**PUBLISHED, "val_loss": 1.3396, "lstm_val_loss": 1.4265, "ngram_weight": 0.51,
                        "ngram_val_loss": 1.3974, "ngram_order": 8, "unigram_val_loss": 3.1231, "steps": 6158,
                        "train_seconds": 300.0, "converged_since": 3})
    assert ("Validation loss 1.340 nats per character as served, the LSTM (1.427 alone) mixed with the n-gram at "
            "weight 0.51; baselines 1.397 (8-gram)") in text
    assert "6158 training steps (5 minutes)" in text
    assert "Converged on this export since version 3" in text
    assert "Converged" not in render_text({**PUBLISHED, "converged_since": None})
