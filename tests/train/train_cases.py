"""Shared helpers of the judge fine-tuning tests."""


def make_config(tmp_path, **overrides):
    """A small, fast JudgeTrainingConfig for the tests."""
    from pycomp.train import JudgeTrainingConfig

    kw = dict(output_dir=str(tmp_path / "adapter"), gold_field="gold", group_field="group", id_field="id",
              attribute="more positive", noun="review", all_pairs=True, max_steps=4,
              per_device_train_batch_size=4, per_device_eval_batch_size=12, learning_rate=1e-3, lora_r=4,
              lora_alpha=8, lora_dropout=0.0, logging_steps=1, save_steps=1000, seed=0, use_cpu=True,
              disable_tqdm=True)
    kw.update(overrides)
    return JudgeTrainingConfig(**kw)
