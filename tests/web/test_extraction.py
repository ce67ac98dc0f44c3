"""Pulling memorised posts out through the web API: the attack the copy check on the whole
served text (prompt plus continuation) is there to stop."""

import asyncio
import re

import pytest

from tests.conftest import TINY_MODEL, fit, tiny_config
from tests.web.helpers import make_settings, serving
from trainer.corpus import Corpus, Record
from web.app import create_app

POSTS = [
    "i never told anyone that my grandmother kept bees behind the old train station",
    "the password to the shed is still written under the blue flower pot by the door",
    "we should meet at the corner cafe on friday after work and talk about the move",
    "honestly the best soup i ever had was in a tiny place near the harbour in march",
]


def seven_word_runs(text: str) -> set[tuple]:
    words = re.findall(r"\w+(?:'\w+)*", text.lower())
    return {tuple(words[i:i + 7]) for i in range(len(words) - 6)}


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A model that has learnt four posts by heart."""
    directory = tmp_path_factory.mktemp("memorised")
    records = [Record("post", post) for post in POSTS] * 60
    result = fit(Corpus("test", records), TINY_MODEL, tiny_config(max_steps=400, eval_every=400), directory,
                 resume=False)
    assert result.record.val_loss < 0.3  # it really has them by heart
    return directory


@pytest.mark.slow
def test_prompting_with_a_posts_first_words_never_returns_seven_of_its_words_in_a_row(memorised):
    training_runs = set().union(*map(seven_word_runs, POSTS))
    prompts = [" ".join(post.split()[:k]) + " " for k in range(1, 7) for post in POSTS]
    tries = (prompts * 3)[:50]

    async def attack():
        app = create_app(make_settings(memorised, web_rate_per_minute=1000, blocklist="off"))
        async with serving(app) as client:
            answers = []
            for prompt in tries:
                response = await client.post("/api/generate", json={"prompt": prompt, "temperature": 0.05,
                                                                    "seed": 7})
                assert response.status_code == 200, response.text
                answers += response.json()["texts"]
            return answers, app.state.service.tally

    answers, tally = asyncio.run(attack())
    assert len(answers) == 50
    leaked = [text for text in answers if seven_word_runs(text) & training_runs]
    assert leaked == []
    assert tally.copies > 0  # the model did try to recite: the check, not luck, kept it out
