"""The paper's analyses rerun offline: `run_experiment` trains and scores the arms of Tables 1-3.

`plan` says what each table compares, `segmenter` is the FCN-score analogue's judge,
`metrics` holds its scores plus the sharpness ratio and the Lab colour-histogram
intersection of Fig. 7, `runner` trains and scores every arm, and `report` writes
results.json, results.md and the figures.
"""

__all__ = ["run_experiment"]


def __getattr__(name):
    # Lazy, so that the CLI's parser can read the plan without starting TensorFlow.
    if name == "run_experiment":
        from pix2pix_tf.experiments.runner import run_experiment

        return run_experiment
    raise AttributeError(f"module 'pix2pix_tf.experiments' has no attribute {name!r}")
