"""The markers of the dataset folders the data commands write, each telling a rerun it may replace the folder.

The folders' contents (splits of A|B images) are the data package's own layout
(`data.files`); the markers are what `files.staged_output` checks before replacing one.
"""

SYNTH_MARKER = ".pix2pix_tf_synth"  # in every dataset `data synth` writes
COMBINE_MARKER = ".pix2pix_tf_combine"  # in every folder `data combine` writes
DOWNLOAD_MARKER = ".pix2pix_tf_download"  # in every dataset folder `data download` extracted
