from pix2pix_tf.cli import main

raise SystemExit(main())
