import sys

from rats_app.worlds.moving_shapes.pretrain.cli import main

sys.exit(main())
