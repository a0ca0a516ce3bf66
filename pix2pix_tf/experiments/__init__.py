"""The paper's analyses rerun offline (issue 11, in progress): the scores they are measured with.

`metrics` holds the FCN-score analogue's confusion-matrix scores, the sharpness ratio
and the Lab colour-histogram intersection of Fig. 7.
"""
