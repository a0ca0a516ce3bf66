"""Models shipped with pix2pix_tf, installed as the subpackage `pix2pix_tf.saved_models`.

Each folder is an export dir; `pix2pix_tf.shipped_model()` finds the demo model. This
file makes the folder a regular package so that editable installs map it as well.
"""
