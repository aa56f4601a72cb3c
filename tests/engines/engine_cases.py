"""Constants and prompt builders shared by the engine tests."""
SERVED_NAME = "smollm2-135m"
KEY_ENV = "PYCOMP_TEST_VLLM_KEY"
MAX_MODEL_LEN = 1024


def review_prompts(backend, n_pairs: int = 8):
    """Both-order pairwise prompts over the built-in reviews example, rendered by ``backend``."""
    import numpy as np

    from pycomp import examples
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import PromptSettings, build_prompts
    from pycomp.plan import random_pairs

    frame, cfg = examples.load("reviews")
    pairs = np.asarray(random_pairs(len(frame), 4, seed=1))[:n_pairs]
    texts = frame["text"].tolist()
    settings = PromptSettings(cfg["attribute"], cfg["noun"])
    return texts, pairs, build_prompts(backend, PairTemplate(), texts, pairs, settings)
